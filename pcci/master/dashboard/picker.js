// Where a Run or a Copy goes: the target and exclusions, checked against the master
// (GET /workers?target=) before the submit button is offered, and the rolling batch
// options both POST /job and POST /copy take (docs/api.md).
import {api} from "./api.js";
import {clearError, el, showError} from "./dom.js";
import {fold} from "./format.js";

// `submit`: the form's submit button, labelled `label(count)` once the targets are checked.
export function targetPicker(submit, label) {
  const target = el("input", {id: "target", name: "target", placeholder: "* (every online worker)", spellcheck: "false"});
  const exclude = el("input", {id: "exclude", name: "exclude", placeholder: "none", spellcheck: "false"});
  const batch = el("input", {id: "batch", name: "batch", placeholder: "all at once", spellcheck: "false",
                             pattern: "[0-9]+%?", title: "a number of jobs, or a percentage such as 25%"});
  const maxFailures = el("input", {id: "max-failures", name: "maxFailures", type: "number", min: "0", step: "1",
                                   placeholder: "no limit"});
  const check = el("button", {type: "button", class: "secondary", id: "check"}, "Check targets");
  const resolved = el("div", {class: "resolved", id: "resolved", role: "status"});
  const fields = [
    el("div", {class: "row"},
      el("div", {}, el("label", {for: "target"}, "Target"), target),
      el("div", {}, el("label", {for: "exclude"}, "Exclude"), exclude)),
    el("p", {class: "muted"}, "Targets as in the API: names and ranges (pi[1-8]), @groups, label=value, !exclusions."),
    el("div", {class: "row"},
      el("div", {class: "narrow"}, el("label", {for: "batch"}, "Batch"), batch),
      el("div", {class: "narrow"}, el("label", {for: "max-failures"}, "Max failures"), maxFailures),
      el("p", {class: "muted"}, "A rolling batch: at most this many jobs at once (or N% of them); once more than "
         + "max failures have failed, the rest are skipped.")),
  ];

  let checked = null;
  const unchecked = () => { checked = null; submit.disabled = true; submit.textContent = label(null); };
  unchecked();
  target.addEventListener("input", unchecked);
  exclude.addEventListener("input", unchecked);
  check.addEventListener("click", async () => {
    clearError();
    const params = new URLSearchParams({target: target.value.trim() || "*"});
    if (exclude.value.trim()) params.set("exclude", exclude.value.trim());
    try {
      const answer = await api("GET", "/workers?" + params);
      const names = answer.workers.map((worker) => worker.name);
      const online = answer.workers.filter((worker) => worker.online).length;
      checked = names;
      resolved.replaceChildren(el("p", {}, el("strong", {}, String(names.length)), " worker(s), ", String(online),
                                  " online: ", el("span", {class: "mono", id: "resolved-nodes"}, fold(names))));
      submit.disabled = names.length === 0;
      submit.textContent = label(names.length);
    } catch (error) {
      unchecked();
      resolved.replaceChildren();
      showError(error);
    }
  });

  // The request's fields for where it goes; only what the user gave (the API's defaults otherwise).
  const body = () => {
    const given = {workers: target.value.trim() || "*"};
    if (exclude.value.trim()) given.exclude = exclude.value.trim();
    const size = batch.value.trim();
    if (size) given.batch = /^\d+$/.test(size) ? Number(size) : size;      // "25%" goes as text
    if (maxFailures.value !== "") given.maxFailures = Number(maxFailures.value);
    return given;
  };
  return {fields, check, resolved, body, isChecked: () => checked !== null};
}
