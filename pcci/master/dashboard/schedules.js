// The schedules view: every schedule (GET /schedules) with its next due time, its last
// run's outcome (a link to its pool) and its last success; a button enables or disables
// one (PUT /schedules/NAME, an operate token). It reloads as pools start and end.
import {api} from "./api.js";
import {listen} from "./cluster.js";
import {el, mount, ready, showError} from "./dom.js";
import {formatTime} from "./format.js";

function lastRun(schedule) {
  const last = schedule.lastRun;
  if (!last) return "";
  const badge = el("span", {class: "badge state-" + last.outcome, title: last.error || ""}, last.outcome);
  if (!last.pool) return badge;
  return el("a", {href: "#/pool/" + encodeURIComponent(last.pool)}, badge);
}

// One button per schedule, kept across reloads and updated in place: the table reloads as
// pools start and end (every second for "every 1s"), and a button replaced between a
// press and its release would swallow the user's click.
function toggle(buttons, schedule, reload) {
  let button = buttons.get(schedule.name);
  if (!button) {
    button = el("button", {type: "button", class: "toggle", "data-name": schedule.name});
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await api("PUT", "/schedules/" + encodeURIComponent(schedule.name), {enabled: !button.enabledNow});
        await reload();
      } catch (error) {
        showError(error);
      } finally {
        button.disabled = false;
      }
    });
    buttons.set(schedule.name, button);
  }
  button.enabledNow = schedule.enabled;
  button.textContent = schedule.enabled ? "Disable" : "Enable";
  return button;
}

export async function showSchedules(signal) {
  const body = el("tbody");
  mount(el("h1", {}, "Schedules"),
        el("div", {class: "table-wrap"}, el("table", {id: "schedules"},
          el("thead", {}, el("tr", {}, ["Name", "When", "Next due", "Last run", "Last success", "Command", ""]
            .map((name, i) => el("th", {scope: "col", class: i === 4 || i === 5 ? "hide-narrow" : ""}, name)))),
          body)));

  const buttons = new Map();
  const load = async () => {
    const listed = await api("GET", "/schedules");
    if (signal.aborted) return;
    const names = new Set(listed.schedules.map((schedule) => schedule.name));
    for (const name of buttons.keys()) if (!names.has(name)) buttons.delete(name);
    body.replaceChildren(...listed.schedules.map((schedule) => el("tr", {"data-name": schedule.name},
      el("td", {class: "mono"}, schedule.name),
      el("td", {class: "mono"}, schedule.when + (schedule.timezone !== "UTC" ? " (" + schedule.timezone + ")" : "")),
      el("td", {}, schedule.enabled ? formatTime(schedule.nextDue) : el("span", {class: "muted"}, "disabled")),
      el("td", {}, lastRun(schedule)),
      el("td", {class: "hide-narrow"}, schedule.lastSuccess ? formatTime(schedule.lastSuccess) : ""),
      el("td", {class: "wrap mono hide-narrow"}, schedule.cmd ? schedule.cmd.slice(0, 80)
                                                              : "copy to " + ((schedule.copy || {}).dest || "")),
      el("td", {}, toggle(buttons, schedule, load)))));
    if (!listed.schedules.length) {
      body.append(el("tr", {}, el("td", {colspan: 7, class: "muted"},
                                  "No schedules. Add one with pcci schedule add or POST /schedules.")));
    }
    ready();
  };
  await load();
  let pending = null;
  listen(signal, (name) => {
    if (name === "pool" && !pending) pending = setTimeout(() => { pending = null; load().catch(showError); }, 300);
  });
}
