// One pool: its facts, its jobs with kill buttons, and its output: per node and live
// from GET /pool/ID/events while it runs, grouped like clush -b once it is done.
import {api, follow} from "./api.js";
import {el, mount, ready, showError, timings} from "./dom.js";
import {fold, formatDuration, formatTime} from "./format.js";
import {stateSummary} from "./pools.js";

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
  if ((job.state === "succeeded" || job.state === "failed") && job.exitCode !== null) return "exit " + job.exitCode;
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

export async function showPool(signal, poolId) {
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
  // Running jobs' durations move with the clock.
  const ticker = setInterval(renderJobs, 1000);
  signal.addEventListener("abort", () => clearInterval(ticker));
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
  clearInterval(ticker);
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
