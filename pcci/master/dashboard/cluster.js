// The cluster as it changes (GET /events): workers and pools, for the views that listen.
import {follow} from "./api.js";
import {$} from "./dom.js";

// onLost: called when the stream drops (app.js checks whether this master became a standby).
// streamDown: while true, nothing here is known to be current: the views say "unknown"
// rather than the last state they heard of. Listeners hear it as a "connection" event.
export const cluster = {workers: new Map(), abort: null, listeners: new Set(), onLost: null, streamDown: false};

// Browsers open at most six HTTP/1.1 connections to one server, for all their tabs: a
// stream per tab would leave the seventh tab waiting forever. So the tabs of a browser
// share one: the tab holding the "pcci-events" lock follows GET /events and passes each
// event on to the others over a BroadcastChannel; when it closes, another takes over.
// Where locks are missing (plain http off loopback is not a secure context), each tab
// follows on its own.
const sharing = "BroadcastChannel" in window && navigator.locks ? new BroadcastChannel("pcci-events") : null;

export function startCluster() {
  if (cluster.abort) return;
  cluster.abort = new AbortController();
  const signal = cluster.abort.signal;
  const live = $("#live");
  let leading = false;
  const showLive = (connected, shared) => {
    live.textContent = connected ? (shared ? "live (shared)" : "live") : "reconnecting";
    live.className = "live " + (connected ? "connected" : "lost");
    if (cluster.streamDown === connected) {
      cluster.streamDown = !connected;
      for (const listener of cluster.listeners) listener("connection", {connected});
    }
    if (!connected && cluster.onLost) cluster.onLost();
  };
  const deliver = (name, data) => {
    if (name === "worker") cluster.workers.set(data.name, data);
    if (name === "worker_forgotten") cluster.workers.delete(data.name);
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

export function stopCluster() {
  if (cluster.abort) cluster.abort.abort();
  cluster.abort = null;
  cluster.streamDown = false;
  $("#live").textContent = "";
  $("#live").className = "live";
}

export function listen(signal, listener) {
  cluster.listeners.add(listener);
  signal.addEventListener("abort", () => cluster.listeners.delete(listener));
}
