// Run a command: a target expression resolved to its nodes first, then POST /job.
import {api} from "./api.js";
import {clearError, el, mount, ready, showError} from "./dom.js";
import {fold} from "./format.js";

export async function showRun(signal) {
  const cmd = el("textarea", {id: "cmd", name: "cmd", required: true, rows: 3, spellcheck: "false",
                              placeholder: "uptime"});
  const target = el("input", {id: "target", name: "target", placeholder: "* (every online worker)", spellcheck: "false"});
  const exclude = el("input", {id: "exclude", name: "exclude", placeholder: "none", spellcheck: "false"});
  const timeout = el("input", {id: "timeout", name: "timeout", type: "number", min: "1", step: "any", placeholder: "none"});
  const check = el("button", {type: "button", class: "secondary", id: "check"}, "Check targets");
  const run = el("button", {type: "submit", id: "run", disabled: true}, "Run");
  const resolved = el("div", {class: "resolved", id: "resolved", role: "status"});
  const form = el("form", {id: "run-form", class: "card"},
    el("label", {for: "cmd"}, "Command"), cmd,
    el("div", {class: "row"},
      el("div", {}, el("label", {for: "target"}, "Target"), target),
      el("div", {}, el("label", {for: "exclude"}, "Exclude"), exclude),
      el("div", {class: "narrow"}, el("label", {for: "timeout"}, "Timeout (s)"), timeout)),
    el("p", {class: "muted"}, "Targets as in the API: names and ranges (pi[1-8]), @groups, label=value, !exclusions."),
    el("div", {class: "actions"}, check, run), resolved);
  mount(el("h1", {}, "Run a command"), form);
  ready();

  let checked = null;
  const unchecked = () => { checked = null; run.disabled = true; run.textContent = "Run"; };
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
      run.disabled = names.length === 0;
      run.textContent = "Run on " + names.length + " worker(s)";
    } catch (error) {
      unchecked();
      resolved.replaceChildren();
      showError(error);
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!checked) return;
    clearError();
    const body = {cmd: cmd.value, workers: target.value.trim() || "*"};
    if (exclude.value.trim()) body.exclude = exclude.value.trim();
    if (timeout.value) body.timeout = Number(timeout.value);
    run.disabled = true;
    try {
      const submitted = await api("POST", "/job", body);
      location.hash = "#/pool/" + encodeURIComponent(submitted.id);
    } catch (error) {
      run.disabled = false;
      showError(error);
    }
  });
  cmd.focus();
}
