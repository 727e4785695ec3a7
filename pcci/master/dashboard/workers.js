// The workers view: every worker with its stats and warnings, updated in place as
// events arrive (a frame at most per animation frame, not a redraw per heartbeat).
import {api} from "./api.js";
import {cluster, listen} from "./cluster.js";
import {el, mount, ready, timings} from "./dom.js";
import {ageSeconds, finite, fixed, formatAge, listOr, objectOr, percent, text} from "./format.js";

const HOT_CELSIUS = 75;          // a Pi 4 starts to throttle at 80 °C
const VERY_HOT_CELSIUS = 80;
const FULL_PERCENT = 90;         // disk or memory
const SILENT_SECONDS = 15;       // the master's default heartbeat_timeout; heartbeats come every 5 s

// What the row says of a worker: while the dashboard's own event stream is down it has no
// news of any, so each is "unknown" rather than the last state heard (which may be stale).
function stateOf(worker) {
  if (cluster.streamDown) return "unknown";
  return worker.online ? "online" : "offline";
}

function warningsOf(worker) {
  const warnings = [];
  const stats = objectOr(worker.stats);
  if (stateOf(worker) === "online") {
    const age = ageSeconds(worker.lastHeartbeat);
    if (age !== null && age > SILENT_SECONDS) warnings.push(["silent " + Math.round(age) + " s", true]);
    const celsius = finite(stats.temperature);
    if (celsius !== null && celsius >= HOT_CELSIUS) {
      warnings.push(["hot " + fixed(celsius, 0, " °C"), celsius >= VERY_HOT_CELSIUS]);
    }
    const disk = finite(objectOr(stats.disk).percent), memory = finite(objectOr(stats.memory).percent);
    if (disk !== null && disk >= FULL_PERCENT) warnings.push(["disk " + percent(disk), true]);
    if (memory !== null && memory >= FULL_PERCENT) warnings.push(["memory " + percent(memory), false]);
  }
  return warnings;
}

const WORKER_COLUMNS = [
  ["Worker", ""], ["State", ""], ["Address", "hide-narrow"], ["CPU", "num"], ["Memory", "num"], ["Disk", "num"],
  ["Temp", "num"], ["Load", "num hide-narrow"], ["Jobs", "num"], ["Labels", "hide-narrow"],
  ["Heartbeat", "hide-narrow"], ["Warnings", ""],
];

function workerCells(worker) {
  const stats = worker.online ? objectOr(worker.stats) : {};
  const running = listOr(worker.runningJobs).length, queued = listOr(worker.queuedJobs).length;
  const state = stateOf(worker);
  return [
    text(worker.name),
    el("span", {class: "badge worker-" + state}, state),
    text(worker.address),
    percent(stats.cpuPercent),
    percent(objectOr(stats.memory).percent),
    percent(objectOr(stats.disk).percent),
    fixed(stats.temperature, 1, " °C"),
    fixed(listOr(stats.loadAverage)[0], 2),
    queued ? running + " + " + queued + " queued" : String(running),
    Object.entries(objectOr(worker.labels)).map(([key, value]) => el("span", {class: "label"}, key + "=" + text(value))),
    formatAge(ageSeconds(worker.online ? worker.lastHeartbeat : worker.lastSeen)),
    warningsOf(worker).map(([words, bad]) => el("span", {class: "warning" + (bad ? " bad" : "")}, words)),
  ];
}

// A row no helper foresaw (a bug of ours): its name and state, the rest left blank.
function fallbackCells(worker) {
  return WORKER_COLUMNS.map((column, i) => i === 0 ? text(worker.name) : i === 1 ? stateOf(worker) : "");
}

function fillRow(row, worker) {
  let cells;
  try {
    cells = workerCells(worker);
  } catch (error) {
    console.warn("worker " + text(worker.name) + ": shown without its stats:", error);
    cells = fallbackCells(worker);
  }
  for (let i = 0; i < cells.length; i++) {
    const content = cells[i];
    if (Array.isArray(content) || content instanceof Node) row.cells[i].replaceChildren(...[].concat(content));
    else if (row.cells[i].textContent !== content) row.cells[i].textContent = content;
  }
  row.dataset.online = worker.online ? "yes" : "no";
  row.dataset.state = stateOf(worker);
  row.dataset.warn = row.cells[11].childElementCount ? "yes" : "no";
}

export async function showWorkers(signal) {
  const started = performance.now();
  const filter = el("input", {type: "search", id: "worker-filter", placeholder: "name, address or label",
                              "aria-label": "Filter workers by name, address or label"});
  const which = el("select", {id: "worker-which", "aria-label": "Which workers"},
                   el("option", {value: "all"}, "All workers"), el("option", {value: "online"}, "Online"),
                   el("option", {value: "offline"}, "Offline"), el("option", {value: "warn"}, "With warnings"));
  const summary = el("p", {class: "summary", id: "worker-summary"}, "Loading…");
  const body = el("tbody");
  const table = el("table", {id: "workers"},
                   el("thead", {}, el("tr", {}, WORKER_COLUMNS.map(([name, kind]) =>
                     el("th", {scope: "col", class: kind}, name)))), body);
  mount(el("h1", {}, "Workers"), el("div", {class: "toolbar"}, filter, which), summary,
        el("div", {class: "table-wrap"}, table));

  const listed = await api("GET", "/workers");
  if (signal.aborted) return;
  for (const worker of listed.workers) cluster.workers.set(worker.name, worker);
  const rows = new Map();
  const dirty = new Set(cluster.workers.keys());
  let scheduled = false;

  const matches = (worker, row) => {
    const words = filter.value.trim().toLowerCase();
    if (which.value === "online" && !worker.online) return false;
    if (which.value === "offline" && worker.online) return false;
    if (which.value === "warn" && row.dataset.warn !== "yes") return false;
    if (!words) return true;
    const labels = Object.entries(objectOr(worker.labels)).map(([k, v]) => k + "=" + text(v)).join(" ");
    return (text(worker.name) + " " + text(worker.address) + " " + labels).toLowerCase().includes(words);
  };
  const summarize = () => {
    if (cluster.streamDown) {
      summary.replaceChildren(el("span", {}, el("strong", {}, String(cluster.workers.size)), " workers, state unknown: "
                                 + "this page lost the master's event stream and is reconnecting"));
      return;
    }
    let online = 0, warned = 0, running = 0;
    for (const [name, worker] of cluster.workers) {
      if (worker.online) online++;
      if (rows.get(name) && rows.get(name).dataset.warn === "yes") warned++;
      running += listOr(worker.runningJobs).length;
    }
    summary.replaceChildren(el("span", {}, el("strong", {}, String(online)), " online"),
                            el("span", {}, el("strong", {}, String(cluster.workers.size - online)), " offline"),
                            el("span", {}, el("strong", {}, String(running)), " jobs running"),
                            el("span", {}, el("strong", {}, String(warned)), " with warnings"));
  };
  const flush = () => {
    scheduled = false;
    if (signal.aborted) return;
    let added = false;
    for (const name of dirty) {
      const worker = cluster.workers.get(name);
      if (!worker) continue;            // forgotten meanwhile
      let row = rows.get(name);
      if (!row) {
        row = el("tr", {"data-name": name}, WORKER_COLUMNS.map(([, kind]) => el("td", {class: kind})));
        rows.set(name, row);
        added = true;
      }
      fillRow(row, worker);
      try {
        row.hidden = !matches(worker, row);
      } catch (error) {
        row.hidden = false;       // shown rather than lost
      }
    }
    dirty.clear();
    if (added) {
      const fragment = document.createDocumentFragment();
      for (const name of [...rows.keys()].sort()) fragment.append(rows.get(name));
      body.append(fragment);
    }
    summarize();
  };
  const schedule = () => {
    if (!scheduled) { scheduled = true; requestAnimationFrame(flush); }
  };
  const refilter = () => {
    for (const [name, row] of rows) row.hidden = !matches(cluster.workers.get(name), row);
  };
  filter.addEventListener("input", refilter);
  which.addEventListener("change", refilter);

  flush();
  timings.workersRendered = performance.now() - started;
  timings.workersShown = rows.size;
  ready();
  listen(signal, (name, data) => {
    if (name === "worker") { dirty.add(data.name); schedule(); }
    if (name === "connection") {
      for (const row of rows.keys()) dirty.add(row);
      schedule();
    }
    if (name === "worker_forgotten" && rows.has(data.name)) {
      rows.get(data.name).remove();
      rows.delete(data.name);
      dirty.delete(data.name);
      summarize();
    }
  });
  // Ages and silent-worker warnings move with the clock, not with events.
  const ticker = setInterval(() => {
    for (const name of rows.keys()) dirty.add(name);
    schedule();
  }, 1000);
  signal.addEventListener("abort", () => clearInterval(ticker));
}
