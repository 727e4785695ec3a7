// The PCCI dashboard: one page over the REST API (docs/api.md). This module signs in and
// routes (#/workers, #/pools, #/pool/ID, #/run, #/copy) to the views, one module each; api.js
// talks to the master, cluster.js follows the cluster's events, dom.js and format.js
// build and word what is shown. Plain ES modules, no build step.
//
// Rules kept throughout:
// - Every value from a worker or a job is inserted as text (el(), textContent), never as
//   HTML: a job that prints <script> shows those characters.
// - The API token lives in sessionStorage only and goes out in the Authorization header,
//   never in a URL (so never in a log), never in the page.
// - Live views follow the event streams (GET /events, GET /pool/ID/events) read with
//   fetch(), since EventSource cannot send a header; they resume with Last-Event-ID.
import {ApiError, TOKEN_KEY, auth, token, api} from "./api.js";
import {cluster, startCluster, stopCluster} from "./cluster.js";
import {showCopy} from "./copy.js";
import {$, clearError, showError} from "./dom.js";
import {showPool} from "./pool.js";
import {showPools} from "./pools.js";
import {showRun} from "./run.js";
import {showSchedules} from "./schedules.js";
import {showWorkers} from "./workers.js";

let signedOut = false;
auth.refused = (error) => needSignIn(error);
auth.failed = (error) => showError(error);

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

const views = {workers: showWorkers, pools: showPools, pool: showPool, run: showRun, copy: showCopy,
               schedules: showSchedules};

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

// A standby master has no live cluster to show: send the user to the active one.
function showStandby(active) {
  $("#view").hidden = true;
  const notice = $("#standby");
  const link = $("#standby-link");
  let target = null;
  try {
    const url = active && new URL(active.api);
    if (url && (url.protocol === "http:" || url.protocol === "https:")) target = url.origin + "/";
  } catch (error) { target = null; }
  notice.hidden = false;
  $("#standby-text").textContent = target
    ? "This master is a standby. The cluster is driven from the active master: "
    : "This master is a standby, and no master is active right now (an election takes a few seconds). "
      + "This page tries again in 5 seconds.";
  link.hidden = !target;
  if (target) {
    link.href = target;
    link.textContent = target;
  } else {
    setTimeout(() => location.reload(), 5000);
  }
}

// The stream dropped: if this master stepped down (another holds the lease), say so.
let lastCheck = 0;
async function checkStillActive() {
  if (Date.now() - lastCheck < 3000) return;
  lastCheck = Date.now();
  try {
    const health = await api("GET", "/health");
    if (health.role === "standby") {
      stopCluster();
      showStandby(health.active);
    }
  } catch (error) { /* down or restarting: the stream keeps retrying */ }
}

async function start() {
  try {
    const health = await api("GET", "/health");
    document.title = "PCCI " + health.version;
    if (health.role === "standby") {
      showStandby(health.active);
      return;
    }
    await api("GET", "/pools?limit=1");     // does this master want a token we lack? (401 signs in)
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) showError(error);
    return;
  }
  $("#sign-out").hidden = !token();
  cluster.onLost = checkStillActive;
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

