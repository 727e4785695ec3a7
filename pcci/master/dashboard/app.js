// The PCCI dashboard: one page over the REST API (docs/api.md).
//
// Rules kept throughout:
// - Every value from a worker or a job is inserted as text (el(), textContent), never as
//   HTML: a job that prints <script> shows those characters.
// - The API token lives in sessionStorage only and goes out in the Authorization header,
//   never in a URL (so never in a log), never in the page.
// - Live views follow the event streams (GET /events, GET /pool/ID/events) read with
//   fetch(), since EventSource cannot send a header; they resume with Last-Event-ID.
"use strict";

const TOKEN_KEY = "pcci.token";
const HOT_CELSIUS = 75;          // a Pi 4 starts to throttle at 80 °C
const VERY_HOT_CELSIUS = 80;
const FULL_PERCENT = 90;         // disk or memory
const SILENT_SECONDS = 15;       // the master's default heartbeat_timeout; heartbeats come every 5 s
const POOLS_PER_PAGE = 25;
const STREAM_RETRY_MS = [500, 1000, 2000, 5000, 10000];
const timings = (window.pcciTimings = {});

// -- small helpers ------------------------------------------------------------------

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const $ = (selector) => document.querySelector(selector);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let clockSkewMs = 0;   // master's clock minus ours, from the Date header

function ageSeconds(isoTime) {
  if (!isoTime) return null;
  return Math.max(0, (Date.now() + clockSkewMs - Date.parse(isoTime)) / 1000);
}

function formatAge(seconds) {
  if (seconds === null) return "never";
  if (seconds < 1.5) return "just now";
  if (seconds < 90) return Math.round(seconds) + " s ago";
  if (seconds < 5400) return Math.round(seconds / 60) + " min ago";
  if (seconds < 172800) return Math.round(seconds / 3600) + " h ago";
  return Math.round(seconds / 86400) + " d ago";
}

function formatTime(isoTime) {
  if (!isoTime) return "";
  const date = new Date(isoTime);
  return date.toLocaleString(undefined, {dateStyle: "short", timeStyle: "medium"});
}

function formatDuration(startIso, endIso) {
  if (!startIso) return "";
  const end = endIso ? Date.parse(endIso) : Date.now() + clockSkewMs;
  const seconds = Math.max(0, (end - Date.parse(startIso)) / 1000);
  if (seconds < 60) return seconds.toFixed(seconds < 10 ? 2 : 1) + " s";
  if (seconds < 3600) return Math.floor(seconds / 60) + " min " + Math.round(seconds % 60) + " s";
  return Math.floor(seconds / 3600) + " h " + Math.round((seconds % 3600) / 60) + " min";
}

function percent(value) {
  return typeof value === "number" ? value.toFixed(0) + "%" : "";
}

// Node names folded into ranges, as the CLI prints them: pi1,pi2,pi3,pi7 -> pi[1-3,7].
function fold(names) {
  const ranges = new Map();
  const single = [];
  for (const name of names) {
    const match = /^(.*?)(\d+)(\D*)$/.exec(name);
    if (!match) { single.push(name); continue; }
    const key = match[1] + "\u0000" + match[3];
    if (!ranges.has(key)) ranges.set(key, []);
    ranges.get(key).push(match[2]);
  }
  const folded = [...single];
  for (const [key, numbers] of ranges) {
    const [prefix, suffix] = key.split("\u0000");
    if (numbers.length === 1) { folded.push(prefix + numbers[0] + suffix); continue; }
    numbers.sort((a, b) => Number(a) - Number(b) || a.length - b.length);
    const parts = [];
    let first = numbers[0], last = numbers[0];
    for (const number of numbers.slice(1)) {
      if (Number(number) === Number(last) + 1 && number.length === last.length) { last = number; continue; }
      parts.push(first === last ? first : first + "-" + last);
      first = last = number;
    }
    parts.push(first === last ? first : first + "-" + last);
    folded.push(prefix + "[" + parts.join(",") + "]" + suffix);
  }
  return folded.sort().join(",");
}

// -- the API -----------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function headers(extra) {
  const result = Object.assign({Accept: "application/json"}, extra || {});
  if (token()) result.Authorization = "Bearer " + token();
  return result;
}

async function errorOf(response) {
  let code = "http_" + response.status, message = response.status + " " + response.statusText;
  try {
    const body = await response.json();
    if (body && body.error) { code = body.error.code; message = body.error.message; }
  } catch (ignored) { /* not JSON: keep the status line */ }
  return new ApiError(response.status, code, message);
}

async function api(method, path, body) {
  const options = {method, headers: headers(body === undefined ? {} : {"Content-Type": "application/json"}),
                   cache: "no-store"};
  if (body !== undefined) options.body = JSON.stringify(body);
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new ApiError(0, "unreachable", "the master did not answer (" + error.message + ")");
  }
  const date = response.headers.get("Date");
  if (date) clockSkewMs = Date.parse(date) + 500 - Date.now();
  if (!response.ok) {
    const error = await errorOf(response);
    if (error.status === 401) needSignIn(error);
    throw error;
  }
  return response.json();
}

// Follows an event stream until it ends (a pool's done) or `signal` aborts, resuming
// with Last-Event-ID after a broken connection.
async function follow(path, onEvent, signal, onState) {
  let lastId = null;
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      const extra = lastId ? {"Last-Event-ID": lastId, Accept: "text/event-stream"} : {Accept: "text/event-stream"};
      const response = await fetch(path, {headers: headers(extra), signal, cache: "no-store"});
      if (!response.ok) {
        const error = await errorOf(response);
        if (error.status === 401) { needSignIn(error); return; }
        if (error.status < 500) throw Object.assign(error, {final: true});
        throw error;
      }
      onState && onState(true);
      attempt = 0;
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, {stream: true});
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = parseEvent(block);
          if (!event) continue;
          if (event.id) lastId = event.id;
          onEvent(event.name, event.data);
          if (event.name === "done") return;
        }
      }
    } catch (error) {
      if (signal.aborted) return;
      if (error.final) { showError(error); return; }
    }
    onState && onState(false);
    await sleep(STREAM_RETRY_MS[Math.min(attempt, STREAM_RETRY_MS.length - 1)]);
  }
}

function parseEvent(block) {
  let id = null, name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") id = value;
    else if (field === "event") name = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length) return null;
  return {id, name, data: JSON.parse(data.join("\n"))};
}

// -- page frame: errors, sign-in, routing --------------------------------------------

function showError(error) {
  $("#error-text").textContent = error instanceof ApiError
    ? error.message + (error.code && error.status ? " (" + error.code + ", HTTP " + error.status + ")" : "")
    : String(error.message || error);
  $("#error").hidden = false;
}

function clearError() {
  $("#error").hidden = true;
  $("#error-text").textContent = "";
}

let signedOut = false;

// Shows the sign-in form; `refusal` is the API's 401 when a token was given and refused.
function needSignIn(refusal) {
  if (signedOut) return;
  signedOut = true;
  const hadToken = Boolean(token());
  sessionStorage.removeItem(TOKEN_KEY);
  stopCluster();
  stopView();
  const view = $("#view");
  view.replaceChildren($("#sign-in-template").content.cloneNode(true));
  document.body.dataset.view = "sign-in";
  $("#sign-out").hidden = true;
  $("#sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const given = $("#token").value.trim();
    if (!given) return;
    sessionStorage.setItem(TOKEN_KEY, given);
    signedOut = false;
    clearError();
    start();
  });
  $("#token").focus();
  if (hadToken && refusal) showError(refusal);
}

let viewAbort = null;

function stopView() {
  if (viewAbort) viewAbort.abort();
  viewAbort = new AbortController();
  return viewAbort.signal;
}

const views = {workers: showWorkers, pools: showPools, pool: showPool, run: showRun};

function route() {
  if (signedOut) return;
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, query] = hash.split("?");
  const [name, argument] = path.split("/");
  const show = views[name] || showWorkers;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.view === (views[name] ? (name === "pool" ? "pools" : name) : "workers")) {
      link.setAttribute("aria-current", "page");
    } else {
      link.removeAttribute("aria-current");
    }
  }
  clearError();
  const signal = stopView();
  document.body.dataset.view = views[name] ? name : "workers";
  document.body.dataset.ready = "";
  show(signal, decodeURIComponent(argument || ""), new URLSearchParams(query || "")).catch((error) => {
    if (!signal.aborted && !(error instanceof ApiError && error.status === 401)) showError(error);
  });
}

function mount(...children) {
  const view = $("#view");
  view.replaceChildren(...children);
}

function ready() {
  // Since the page began to load: what "the first view loads in" means (docs/performance.md).
  if (timings.firstReady === undefined) timings.firstReady = performance.now();
  document.body.dataset.ready = "yes";
}

// -- the cluster: workers and pools as they change (GET /events) ----------------------

const cluster = {workers: new Map(), abort: null, listeners: new Set()};

// Browsers open at most six HTTP/1.1 connections to one server, for all their tabs: a
// stream per tab would leave the seventh tab waiting forever. So the tabs of a browser
// share one: the tab holding the "pcci-events" lock follows GET /events and passes each
// event on to the others over a BroadcastChannel; when it closes, another takes over.
// Where locks are missing (plain http off loopback is not a secure context), each tab
// follows on its own.
const sharing = "BroadcastChannel" in window && navigator.locks ? new BroadcastChannel("pcci-events") : null;

function startCluster() {
  if (cluster.abort) return;
  cluster.abort = new AbortController();
  const signal = cluster.abort.signal;
  const live = $("#live");
  let leading = false;
  const showLive = (connected, shared) => {
    live.textContent = connected ? (shared ? "live (shared)" : "live") : "reconnecting";
    live.className = "live " + (connected ? "connected" : "lost");
  };
  const deliver = (name, data) => {
    if (name === "worker") cluster.workers.set(data.name, data);
    for (const listener of cluster.listeners) listener(name, data);
  };
  const followOurselves = () => follow("/events", (name, data) => {
    deliver(name, data);
    if (sharing) sharing.postMessage({name, data});
  }, signal, (connected) => {
    showLive(connected, false);
    if (sharing) sharing.postMessage({connected});
  });
  if (!sharing) {
    followOurselves();
    return;
  }
  const onMessage = (message) => {
    if (leading) return;
    if ("connected" in message.data) showLive(message.data.connected, true);
    else deliver(message.data.name, message.data.data);
  };
  sharing.addEventListener("message", onMessage);
  signal.addEventListener("abort", () => sharing.removeEventListener("message", onMessage));
  showLive(true, true);
  navigator.locks.request("pcci-events", {signal}, async () => {
    leading = true;
    await followOurselves();
    leading = false;
  }).catch(() => { /* aborted while waiting for the lock: signed out */ });
}

function stopCluster() {
  if (cluster.abort) cluster.abort.abort();
  cluster.abort = null;
  $("#live").textContent = "";
  $("#live").className = "live";
}

function listen(signal, listener) {
  cluster.listeners.add(listener);
  signal.addEventListener("abort", () => cluster.listeners.delete(listener));
}

// -- workers view ---------------------------------------------------------------------

function warningsOf(worker) {
  const warnings = [];
  const stats = worker.stats || {};
  if (worker.online) {
    const age = ageSeconds(worker.lastHeartbeat);
    if (age !== null && age > SILENT_SECONDS) warnings.push(["silent " + Math.round(age) + " s", true]);
    if (typeof stats.temperature === "number" && stats.temperature >= HOT_CELSIUS) {
      warnings.push(["hot " + stats.temperature.toFixed(0) + " °C", stats.temperature >= VERY_HOT_CELSIUS]);
    }
    if (stats.disk && stats.disk.percent >= FULL_PERCENT) warnings.push(["disk " + percent(stats.disk.percent), true]);
    if (stats.memory && stats.memory.percent >= FULL_PERCENT) warnings.push(["memory " + percent(stats.memory.percent), false]);
  }
  return warnings;
}

const WORKER_COLUMNS = [
  ["Worker", ""], ["State", ""], ["Address", "hide-narrow"], ["CPU", "num"], ["Memory", "num"], ["Disk", "num"],
  ["Temp", "num"], ["Load", "num hide-narrow"], ["Jobs", "num"], ["Labels", "hide-narrow"],
  ["Heartbeat", "hide-narrow"], ["Warnings", ""],
];

function workerCells(worker) {
  const stats = worker.online ? (worker.stats || {}) : {};
  const running = (worker.runningJobs || []).length, queued = (worker.queuedJobs || []).length;
  return [
    worker.name,
    el("span", {class: "badge " + (worker.online ? "worker-online" : "worker-offline")},
       worker.online ? "online" : "offline"),
    worker.address || "",
    percent(stats.cpuPercent),
    stats.memory ? percent(stats.memory.percent) : "",
    stats.disk ? percent(stats.disk.percent) : "",
    typeof stats.temperature === "number" ? stats.temperature.toFixed(1) + " °C" : "",
    Array.isArray(stats.loadAverage) ? stats.loadAverage[0].toFixed(2) : "",
    queued ? running + " + " + queued + " queued" : String(running),
    Object.entries(worker.labels || {}).map(([key, value]) => el("span", {class: "label"}, key + "=" + value)),
    formatAge(ageSeconds(worker.online ? worker.lastHeartbeat : worker.lastSeen)),
    warningsOf(worker).map(([text, bad]) => el("span", {class: "warning" + (bad ? " bad" : "")}, text)),
  ];
}

function fillRow(row, worker) {
  const cells = workerCells(worker);
  for (let i = 0; i < cells.length; i++) {
    const content = cells[i];
    if (Array.isArray(content) || content instanceof Node) row.cells[i].replaceChildren(...[].concat(content));
    else if (row.cells[i].textContent !== content) row.cells[i].textContent = content;
  }
  row.dataset.online = worker.online ? "yes" : "no";
  row.dataset.warn = row.cells[11].childElementCount ? "yes" : "no";
}

async function showWorkers(signal) {
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
    const text = filter.value.trim().toLowerCase();
    if (which.value === "online" && !worker.online) return false;
    if (which.value === "offline" && worker.online) return false;
    if (which.value === "warn" && row.dataset.warn !== "yes") return false;
    if (!text) return true;
    const labels = Object.entries(worker.labels || {}).map(([k, v]) => k + "=" + v).join(" ");
    return (worker.name + " " + (worker.address || "") + " " + labels).toLowerCase().includes(text);
  };
  const summarize = () => {
    let online = 0, warned = 0, running = 0;
    for (const [name, worker] of cluster.workers) {
      if (worker.online) online++;
      if (rows.get(name) && rows.get(name).dataset.warn === "yes") warned++;
      running += (worker.runningJobs || []).length;
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
      let row = rows.get(name);
      if (!row) {
        row = el("tr", {"data-name": name}, WORKER_COLUMNS.map(([, kind]) => el("td", {class: kind})));
        rows.set(name, row);
        added = true;
      }
      fillRow(row, worker);
      row.hidden = !matches(worker, row);
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
  });
  // Ages and silent-worker warnings move with the clock, not with events.
  const ticker = setInterval(() => {
    for (const name of rows.keys()) dirty.add(name);
    schedule();
  }, 1000);
  signal.addEventListener("abort", () => clearInterval(ticker));
}

// -- pools view ---------------------------------------------------------------------------

function stateSummary(states) {
  return Object.entries(states || {}).map(([state, count]) =>
    el("span", {class: "badge state-" + state}, count + " " + state.replace("_", " ")));
}

function poolLink(pool) {
  return el("a", {href: "#/pool/" + encodeURIComponent(pool.id), class: "mono"}, pool.id.slice(0, 13) + "…");
}

async function showPools(signal, ignored, query) {
  const status = query.get("status") || "";
  const before = query.get("before") || "";
  const chooser = el("select", {id: "pool-status", "aria-label": "Status"},
                     el("option", {value: ""}, "All pools"), el("option", {value: "running"}, "Running"),
                     el("option", {value: "done"}, "Done"));
  chooser.value = status;
  chooser.addEventListener("change", () => { location.hash = "#/pools" + (chooser.value ? "?status=" + chooser.value : ""); });
  const body = el("tbody");
  const pager = el("div", {class: "pager"});
  mount(el("h1", {}, "Pools"), el("div", {class: "toolbar"}, chooser),
        el("div", {class: "table-wrap"}, el("table", {id: "pools"},
          el("thead", {}, el("tr", {}, ["Pool", "Command", "Status", "Jobs", "Exit", "Created", "By"].map((name, i) =>
            el("th", {scope: "col", class: i === 4 ? "num" : (i >= 5 ? "hide-narrow" : "")}, name)))), body)),
        pager);

  const load = async () => {
    const params = new URLSearchParams({limit: String(POOLS_PER_PAGE)});
    if (status) params.set("status", status);
    if (before) params.set("before", before);
    const page = await api("GET", "/pools?" + params);
    if (signal.aborted) return;
    body.replaceChildren(...page.pools.map((pool) => el("tr", {"data-id": pool.id},
      el("td", {}, poolLink(pool)),
      el("td", {class: "wrap mono"}, pool.cmd.length > 120 ? pool.cmd.slice(0, 120) + "…" : pool.cmd),
      el("td", {}, el("span", {class: "badge state-" + pool.status}, pool.status)),
      el("td", {class: "wrap"}, stateSummary(pool.states)),
      el("td", {class: "num"}, pool.exitCode === null ? "" : String(pool.exitCode)),
      el("td", {class: "hide-narrow"}, formatTime(pool.createdTime)),
      el("td", {class: "hide-narrow"}, pool.submittedBy || ""))));
    if (!page.pools.length) body.append(el("tr", {}, el("td", {colspan: 7, class: "muted"}, "No pools.")));
    const links = [];
    if (before) links.push(el("a", {href: "#/pools" + (status ? "?status=" + status : "")}, "Newest"));
    if (page.next) {
      const next = new URLSearchParams({before: page.next});
      if (status) next.set("status", status);
      links.push(el("a", {href: "#/pools?" + next, id: "older"}, "Older"));
    }
    pager.replaceChildren(...links);
    ready();
  };
  await load();
  if (!before) {   // the first page follows new and ended pools
    let pending = null;
    listen(signal, (name) => {
      if (name === "pool" && !pending) pending = setTimeout(() => { pending = null; load().catch(showError); }, 300);
    });
  }
}

// -- one pool -----------------------------------------------------------------------------

const LIVE_STATES = new Set(["queued", "running"]);

function killButton(label, onConfirmed, id) {
  // Two steps, no dialog: the first press arms it for five seconds.
  const button = el("button", {type: "button", class: "danger", id}, label);
  let armed = null;
  button.addEventListener("click", () => {
    if (!armed) {
      button.textContent = "Confirm: " + label.toLowerCase();
      armed = setTimeout(() => { armed = null; button.textContent = label; }, 5000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    button.textContent = label;
    button.disabled = true;
    onConfirmed().catch(showError).finally(() => { button.disabled = false; });
  });
  return button;
}

function groupJobs(jobs) {
  const groups = new Map();
  for (const [name, job] of Object.entries(jobs)) {
    const key = JSON.stringify([job.stdout, job.stderr, job.state, job.exitCode, job.signal]);
    if (!groups.has(key)) groups.set(key, {names: [], job});
    groups.get(key).names.push(name);
  }
  return [...groups.values()];
}

function describe(job) {
  if (job.state === "succeeded" || job.state === "failed") return "exit " + job.exitCode;
  if (job.signal) return job.state.replace("_", " ") + ", " + job.signal + ", exit " + job.exitCode;
  return job.state.replace("_", " ");
}

function outputBlock(title, stdout, stderr, truncated) {
  const section = el("section", {class: "output"}, el("h3", {}, title));
  const out = el("pre", {class: "stdout"});
  const err = el("pre", {class: "stderr"});
  out.textContent = stdout || "";
  err.textContent = stderr || "";
  out.hidden = !stdout;
  err.hidden = !stderr;
  section.append(out, err);
  if (truncated) section.append(el("p", {class: "muted"}, truncated));
  return {section, out, err};
}

function targetText(pool) {
  const text = (value) => Array.isArray(value) ? value.join(",") : String(value);
  if (!pool.target) return fold(Object.keys(pool.jobs));
  return text(pool.target.workers) + (pool.target.exclude ? " except " + text(pool.target.exclude) : "");
}

async function showPool(signal, poolId) {
  const started = performance.now();
  let pool = await api("GET", "/pool/" + encodeURIComponent(poolId));
  if (signal.aborted) return;
  const facts = el("dl", {class: "facts"});
  const header = el("div", {class: "actions", id: "pool-actions"});
  const jobsBody = el("tbody");
  const outputs = el("div", {id: "outputs"});
  const grouping = el("input", {type: "checkbox", id: "group-output", checked: true});
  const outcome = el("p", {id: "kill-outcome", class: "muted", role: "status"});
  mount(el("h1", {}, "Pool ", el("span", {class: "mono"}, pool.id)), el("div", {class: "card"}, facts), header,
        outcome,
        el("h2", {}, "Jobs"),
        el("div", {class: "table-wrap"}, el("table", {id: "jobs"}, el("thead", {}, el("tr", {},
          ["Worker", "State", "Exit", "Signal", "Started", "Ended", "Took", ""].map((name, i) =>
            el("th", {scope: "col", class: i === 2 ? "num" : (i === 3 || i === 4 || i === 5 ? "hide-narrow" : "")}, name)))),
          jobsBody)),
        el("h2", {}, "Output"),
        el("p", {class: "check"}, grouping, el("label", {for: "group-output"}, "Group identical output")),
        outputs);

  const kill = async (workers) => {
    const answer = await api("PUT", "/kill/" + encodeURIComponent(pool.id), workers ? {workers} : {});
    outcome.textContent = "Kill: " + Object.entries(answer.workers).map(([name, what]) =>
      name + " " + what.replace("_", " ")).join(", ");
  };
  // Rows and buttons are made once and updated in place: a button the user has armed
  // must survive the events that arrive meanwhile.
  const killPool = killButton("Kill pool", () => kill(null), "kill-pool");
  header.append(killPool);
  const renderFacts = () => {
    const items = [["Command", el("pre", {class: "cmd"}, pool.cmd)], ["Status", el("span", {class: "badge state-" + pool.status}, pool.status)],
                   ["Jobs", stateSummary(pool.states)], ["Exit code", pool.exitCode === null ? "" : String(pool.exitCode)],
                   ["Target", targetText(pool)], ["Created", formatTime(pool.createdTime)],
                   ["Ended", formatTime(pool.endTime)], ["Timeout", pool.timeout ? pool.timeout + " s" : "none"],
                   ["Submitted by", (pool.submittedBy || "") + (pool.submittedFrom ? " from " + pool.submittedFrom : "")]];
    if (pool.killedBy) items.push(["Killed by", pool.killedBy]);
    facts.replaceChildren(...items.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]));
    killPool.hidden = pool.status !== "running";
  };
  const jobRows = new Map();
  const renderJobs = () => {
    for (const [name, job] of Object.entries(pool.jobs)) {
      let row = jobRows.get(name);
      if (!row) {
        row = el("tr", {"data-worker": name}, el("td", {}, name), el("td"), el("td", {class: "num"}),
                 el("td", {class: "hide-narrow"}), el("td", {class: "hide-narrow"}), el("td", {class: "hide-narrow"}),
                 el("td"), el("td", {}, killButton("Kill", () => kill([name]), "kill-" + name)));
        jobRows.set(name, row);
        jobsBody.append(row);
      }
      const state = job.state || "queued";
      row.cells[1].replaceChildren(el("span", {class: "badge state-" + state}, state.replace("_", " ")));
      row.cells[2].textContent = job.exitCode === null || job.exitCode === undefined ? "" : String(job.exitCode);
      row.cells[3].textContent = job.signal || "";
      row.cells[4].textContent = formatTime(job.startTime);
      row.cells[5].textContent = formatTime(job.endTime);
      row.cells[6].textContent = formatDuration(job.startTime, job.endTime);
      row.cells[7].firstChild.hidden = !LIVE_STATES.has(state);
    }
  };
  const renderOutputs = () => {
    const blocks = [];
    if (grouping.checked) {
      for (const {names, job} of groupJobs(pool.jobs)) {
        const cut = [job.stdoutTruncated && "stdout was cut at the worker's output_cap_bytes",
                     job.stderrTruncated && "stderr was cut at the worker's output_cap_bytes"].filter(Boolean).join("; ");
        blocks.push(outputBlock(fold(names) + " (" + describe(job) + ")", job.stdout, job.stderr, cut).section);
      }
    } else {
      for (const [name, job] of Object.entries(pool.jobs)) {
        blocks.push(outputBlock(name + " (" + describe(job) + ")", job.stdout, job.stderr, "").section);
      }
    }
    outputs.replaceChildren(...blocks);
  };
  grouping.addEventListener("change", () => pool.status === "done" ? renderOutputs() : null);
  renderFacts();
  renderJobs();
  if (pool.status === "done") {
    renderOutputs();
    timings.poolRendered = performance.now() - started;
    ready();
    return;
  }

  // Running: per node, from the pool's event stream (it replays everything from the start).
  grouping.disabled = true;
  const live = new Map();
  const liveBlock = (name) => {
    if (!live.has(name)) {
      const block = outputBlock(name, "", "", "");
      block.section.dataset.worker = name;
      live.set(name, block);
      outputs.append(block.section);
    }
    return live.get(name);
  };
  outputs.replaceChildren();
  let redraw = null;
  const recount = () => {
    pool.states = {};
    for (const job of Object.values(pool.jobs)) pool.states[job.state] = (pool.states[job.state] || 0) + 1;
  };
  const later = () => {
    if (!redraw) redraw = setTimeout(() => { redraw = null; recount(); renderFacts(); renderJobs(); }, 100);
  };
  ready();
  await follow("/pool/" + encodeURIComponent(pool.id) + "/events", (name, data) => {
    if (name === "reset") {
      live.clear();
      outputs.replaceChildren();
    } else if (name === "job") {
      Object.assign(pool.jobs[data.worker] || (pool.jobs[data.worker] = {}), data);
      liveBlock(data.worker).section.firstChild.textContent = data.worker + " (" + describe(pool.jobs[data.worker]) + ")";
      later();
    } else if (name === "output") {
      const block = liveBlock(data.worker);
      const target = data.stream === "stderr" ? block.err : block.out;
      const atBottom = target.scrollTop + target.clientHeight >= target.scrollHeight - 4;
      target.append(data.text);
      target.hidden = false;
      if (atBottom) target.scrollTop = target.scrollHeight;
    }
  }, signal);
  if (signal.aborted) return;
  // Done: the stored pool is the whole truth; show it grouped.
  pool = await api("GET", "/pool/" + encodeURIComponent(pool.id));
  if (signal.aborted) return;
  grouping.disabled = false;
  renderFacts();
  renderJobs();
  renderOutputs();
  document.body.dataset.poolDone = pool.id;
}

// -- run a command -----------------------------------------------------------------------

async function showRun(signal) {
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

// -- start ---------------------------------------------------------------------------------

async function start() {
  try {
    const health = await api("GET", "/health");
    document.title = "PCCI " + health.version;
    await api("GET", "/pools?limit=1");     // does this master want a token we lack? (401 signs in)
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) showError(error);
    return;
  }
  $("#sign-out").hidden = !token();
  startCluster();
  route();
}

document.addEventListener("DOMContentLoaded", () => {
  $("#error-close").addEventListener("click", clearError);
  $("#sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    signedOut = false;
    needSignIn();
  });
  window.addEventListener("hashchange", route);
  start();
});
