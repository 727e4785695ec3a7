// Run a command: a target expression resolved to its nodes first, then POST /job with
// the options the API takes (timeout, user, environment, rolling batch).
import {api} from "./api.js";
import {clearError, el, mount, ready, showError} from "./dom.js";
import {targetPicker} from "./picker.js";

// "NAME=VALUE" lines -> {NAME: VALUE}; throws naming the first line that is not one.
export function parseEnv(textValue) {
  const env = {};
  textValue.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    const equals = line.indexOf("=");
    if (equals <= 0) throw new Error("Environment, line " + (i + 1) + ": write NAME=VALUE (got " + JSON.stringify(line) + ")");
    env[line.slice(0, equals).trim()] = line.slice(equals + 1);
  });
  return env;
}

export async function showRun(signal) {
  const cmd = el("textarea", {id: "cmd", name: "cmd", required: true, rows: 3, spellcheck: "false",
                              placeholder: "uptime"});
  const timeout = el("input", {id: "timeout", name: "timeout", type: "number", min: "1", step: "any", placeholder: "none"});
  const user = el("input", {id: "user", name: "user", placeholder: "the worker's default", spellcheck: "false",
                            autocomplete: "off"});
  const env = el("textarea", {id: "env", name: "env", rows: 2, spellcheck: "false", placeholder: "NAME=VALUE, one a line"});
  const run = el("button", {type: "submit", id: "run"}, "Run");
  const picker = targetPicker(run, (count) => count === null ? "Run" : "Run on " + count + " worker(s)");
  const form = el("form", {id: "run-form", class: "card"},
    el("label", {for: "cmd"}, "Command"), cmd,
    picker.fields,
    el("div", {class: "row"},
      el("div", {class: "narrow"}, el("label", {for: "timeout"}, "Timeout (s)"), timeout),
      el("div", {class: "narrow"}, el("label", {for: "user"}, "User"), user),
      el("div", {}, el("label", {for: "env"}, "Environment"), env)),
    el("div", {class: "actions"}, picker.check, run), picker.resolved);
  mount(el("h1", {}, "Run a command"), form);
  ready();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!picker.isChecked()) return;
    clearError();
    const body = Object.assign({cmd: cmd.value}, picker.body());
    if (timeout.value) body.timeout = Number(timeout.value);
    if (user.value.trim()) body.user = user.value.trim();
    try {
      const variables = parseEnv(env.value);
      if (Object.keys(variables).length) body.env = variables;
    } catch (error) {
      showError(error);
      env.focus();
      return;
    }
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
