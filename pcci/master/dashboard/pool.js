// One pool: its facts, its jobs with kill buttons, and its output: per node and live
// from GET /pool/ID/events while it runs, grouped like clush -b once it is done.
// Made for failures at scale: "Failed only" hides every job that did not fail (and its
// output), a job's name links to its output, and on a wide screen the output sits beside
// the jobs, so it is on the first screen however many jobs there are.
// #/pool/ID?failed=1&output=NODE opens it so (the links and the checkbox keep the URL so).
import {api, follow} from "./api.js";
import {el, mount, ready, showError, timings} from "./dom.js";
import {fold, formatDuration, formatTime} from "./format.js";
import {stateSummary} from "./pools.js";

const LIVE_STATES = new Set(["queued", "running"]);
// Every state a job ends in short of success (docs/api.md, job states).
export const FAILED_STATES = new Set(["failed", "timed_out", "killed", "lost", "offline", "unknown_worker", "skipped"]);

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
  if ((job.state === "succeeded" || job.state === "failed") && job.exitCode !== null) return "exit " + job.exitCode;
  if (job.signal) return job.state.replace("_", " ") + ", " + job.signal + ", exit " + job.exitCode;
  return job.state.replace("_", " ");
}

function outputBlock(title, stdout, stderr, truncated) {
  const section = el("section", {class: "output", tabindex: "-1"}, el("h3", {}, title));
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

// The URL of this view as it is shown now, kept without a reload (no hashchange).
function keepInUrl(poolId, failedOnly, output) {
  const query = new URLSearchParams();
  if (failedOnly) query.set("failed", "1");
  if (output) query.set("output", output);
  const text = query.toString();
  const hash = "#/pool/" + encodeURIComponent(poolId) + (text ? "?" + text : "");
  history.replaceState(history.state, "", hash);
}

export async function showPool(signal, poolId, query) {
  const started = performance.now();
  let pool = await api("GET", "/pool/" + encodeURIComponent(poolId));
  if (signal.aborted) return;
  const facts = el("dl", {class: "facts"});
  const header = el("div", {class: "actions", id: "pool-actions"});
  const jobsBody = el("tbody");
  const outputs = el("div", {id: "outputs"});
  const grouping = el("input", {type: "checkbox", id: "group-output", checked: true});
  const failedOnly = el("input", {type: "checkbox", id: "failed-only", checked: query && query.get("failed") === "1"});
  const failedCount = el("span", {id: "failed-count"});
  const outcome = el("p", {id: "kill-outcome", class: "muted", role: "status"});
  let shownOutput = query ? query.get("output") : null;
  mount(el("h1", {}, "Pool ", el("span", {class: "mono"}, pool.id)), el("div", {class: "card"}, facts), header,
        outcome,
        el("div", {class: "panes"},
          el("section", {class: "pane", "aria-labelledby": "jobs-title"},
            el("div", {class: "pane-head"}, el("h2", {id: "jobs-title"}, "Jobs"),
              el("span", {class: "check"}, failedOnly, el("label", {for: "failed-only"}, "Failed only ", failedCount))),
            el("div", {class: "table-wrap jobs-wrap"}, el("table", {id: "jobs"}, el("thead", {}, el("tr", {},
              ["Worker", "State", "Exit", "Signal", "Started", "Ended", "Took", ""].map((name, i) =>
                el("th", {scope: "col", class: i === 2 ? "num" : (i === 3 || i === 4 || i === 5 ? "hide-narrow hide-split" : "")},
                   name)))),
              jobsBody))),
          el("section", {class: "pane", id: "output-pane", "aria-labelledby": "output-title"},
            el("div", {class: "pane-head"}, el("h2", {id: "output-title"}, "Output"),
              el("span", {class: "check"}, grouping, el("label", {for: "group-output"}, "Group identical output"))),
            outputs)));

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
    facts.replaceChildren(...items.flatMap(([name, value], i) =>
      [el("dt", {}, name), el("dd", {class: i === 0 ? "whole" : null}, value)]));
    killPool.hidden = pool.status !== "running";
  };

  // Which output section shows each worker's output (a group's section for all its names).
  const sectionOf = new Map();
  const hiddenByFilter = (state) => failedOnly.checked && !FAILED_STATES.has(state);
  const reveal = (name) => {
    const section = sectionOf.get(name);
    if (!section) return false;
    for (const marked of outputs.querySelectorAll("section.target")) marked.classList.remove("target");
    section.classList.add("target");
    section.scrollIntoView({block: "start"});
    section.focus({preventScroll: true});
    return true;
  };
  const outputLink = (name) => el("a", {href: "#/pool/" + encodeURIComponent(pool.id) + "?output=" + encodeURIComponent(name),
                                        class: "to-output", onclick: (event) => {
    if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;   // a new tab
    event.preventDefault();       // no reload: the link's target is in this page
    shownOutput = name;
    keepInUrl(pool.id, failedOnly.checked, name);
    reveal(name);
  }}, name);

  // While the pool's event stream is down, a job it says is running may have ended since.
  let streamDown = false;
  const jobRows = new Map();
  const renderJobs = () => {
    let failed = 0;
    for (const [name, job] of Object.entries(pool.jobs)) {
      let row = jobRows.get(name);
      if (!row) {
        row = el("tr", {"data-worker": name}, el("td", {}, outputLink(name)), el("td"), el("td", {class: "num"}),
                 el("td", {class: "hide-narrow hide-split"}), el("td", {class: "hide-narrow hide-split"}),
                 el("td", {class: "hide-narrow hide-split"}),
                 el("td"), el("td", {}, killButton("Kill", () => kill([name]), "kill-" + name)));
        jobRows.set(name, row);
        jobsBody.append(row);
      }
      const state = job.state || "queued";
      const shown = streamDown && LIVE_STATES.has(state) ? "unknown" : state;
      if (FAILED_STATES.has(state)) failed++;
      if (row.dataset.state !== shown) {
        row.dataset.state = shown;
        row.cells[1].replaceChildren(el("span", {class: "badge state-" + shown}, shown.replace("_", " ")));
      }
      row.hidden = hiddenByFilter(state);
      row.cells[2].textContent = job.exitCode === null || job.exitCode === undefined ? "" : String(job.exitCode);
      row.cells[3].textContent = job.signal || "";
      row.cells[4].textContent = formatTime(job.startTime);
      row.cells[5].textContent = formatTime(job.endTime);
      row.cells[6].textContent = formatDuration(job.startTime, job.endTime);
      row.cells[6].title = job.startTime ? formatTime(job.startTime) + " to " + (formatTime(job.endTime) || "now") : "";
      row.cells[7].firstChild.hidden = !LIVE_STATES.has(state);
    }
    failedCount.textContent = "(" + failed + ")";
  };
  const filterOutputs = () => {
    for (const section of outputs.children) section.hidden = hiddenByFilter(section.dataset.state);
  };
  const renderOutputs = () => {
    const blocks = [];
    sectionOf.clear();
    const groups = grouping.checked ? groupJobs(pool.jobs) : Object.entries(pool.jobs).map(([name, job]) => ({names: [name], job}));
    for (const {names, job} of groups) {
      const cut = [job.stdoutTruncated && "stdout was cut at the worker's output_cap_bytes",
                   job.stderrTruncated && "stderr was cut at the worker's output_cap_bytes"].filter(Boolean).join("; ");
      const {section} = outputBlock(fold(names) + " (" + describe(job) + ")", job.stdout, job.stderr, cut);
      section.dataset.state = job.state;
      for (const name of names) sectionOf.set(name, section);
      blocks.push(section);
    }
    outputs.replaceChildren(...blocks);
    filterOutputs();
  };
  failedOnly.addEventListener("change", () => {
    keepInUrl(pool.id, failedOnly.checked, shownOutput);
    renderJobs();
    filterOutputs();
  });
  grouping.addEventListener("change", () => pool.status === "done" ? renderOutputs() : null);
  renderFacts();
  renderJobs();
  if (pool.status === "done") {
    renderOutputs();
    if (shownOutput) reveal(shownOutput);
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
      block.section.dataset.state = (pool.jobs[name] || {}).state || "queued";
      block.section.hidden = hiddenByFilter(block.section.dataset.state);
      sectionOf.set(name, block.section);
      live.set(name, block);
      outputs.append(block.section);
      if (name === shownOutput) reveal(name);
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
  // Running jobs' durations move with the clock.
  const ticker = setInterval(renderJobs, 1000);
  signal.addEventListener("abort", () => clearInterval(ticker));
  await follow("/pool/" + encodeURIComponent(pool.id) + "/events", (name, data) => {
    if (name === "reset") {
      live.clear();
      sectionOf.clear();
      outputs.replaceChildren();
    } else if (name === "job") {
      Object.assign(pool.jobs[data.worker] || (pool.jobs[data.worker] = {}), data);
      const block = liveBlock(data.worker);
      block.section.firstChild.textContent = data.worker + " (" + describe(pool.jobs[data.worker]) + ")";
      block.section.dataset.state = pool.jobs[data.worker].state;
      block.section.hidden = hiddenByFilter(block.section.dataset.state);
      later();
    } else if (name === "output") {
      const block = liveBlock(data.worker);
      const target = data.stream === "stderr" ? block.err : block.out;
      const atBottom = target.scrollTop + target.clientHeight >= target.scrollHeight - 4;
      target.append(data.text);
      target.hidden = false;
      if (atBottom) target.scrollTop = target.scrollHeight;
    }
  }, signal, (connected) => {
    if (streamDown === !connected) return;
    streamDown = !connected;
    renderJobs();
  });
  clearInterval(ticker);
  if (signal.aborted) return;
  // Done: the stored pool is the whole truth; show it grouped.
  pool = await api("GET", "/pool/" + encodeURIComponent(pool.id));
  if (signal.aborted) return;
  streamDown = false;
  grouping.disabled = false;
  renderFacts();
  renderJobs();
  renderOutputs();
  if (sectionOf.has(shownOutput)) sectionOf.get(shownOutput).classList.add("target");     // marked, not scrolled to
  document.body.dataset.poolDone = pool.id;
}
