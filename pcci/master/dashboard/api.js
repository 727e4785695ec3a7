// The REST API from the browser: JSON calls and event streams, with the token from this
// tab's sessionStorage in the Authorization header (never in a URL).
import {clock} from "./format.js";

export const TOKEN_KEY = "pcci.token";
const STREAM_RETRY_MS = [500, 1000, 2000, 5000, 10000];
// The master writes at least a keepalive comment every 15 s (docs/api.md): a stream
// silent for longer is cut somewhere without a word (a master that lost power, a dead
// route), and is dropped and dialed again rather than shown as live.
const STREAM_SILENT_MS = 40000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// What the page does when the API refuses the token (401) or a stream cannot go on;
// app.js sets them.
export const auth = {refused: () => {}, failed: () => {}};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function token() {
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

export async function api(method, path, body) {
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
  if (date) clock.skewMs = Date.parse(date) + 500 - Date.now();
  if (!response.ok) {
    const error = await errorOf(response);
    if (error.status === 401) auth.refused(error);
    throw error;
  }
  return response.json();
}

// Follows an event stream until it ends (a pool's done) or `signal` aborts, resuming
// with Last-Event-ID after a broken connection.
export async function follow(path, onEvent, signal, onState) {
  let lastId = null;
  for (let attempt = 0; !signal.aborted; attempt++) {
    const connection = new AbortController();
    const stop = () => connection.abort();
    signal.addEventListener("abort", stop);
    let silence = null;
    const heard = () => { clearTimeout(silence); silence = setTimeout(stop, STREAM_SILENT_MS); };
    try {
      heard();
      const extra = lastId ? {"Last-Event-ID": lastId, Accept: "text/event-stream"} : {Accept: "text/event-stream"};
      const response = await fetch(path, {headers: headers(extra), signal: connection.signal, cache: "no-store"});
      if (!response.ok) {
        const error = await errorOf(response);
        if (error.status === 401) { auth.refused(error); return; }
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
        heard();
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
      if (error.final) { auth.failed(error); return; }
    } finally {
      clearTimeout(silence);
      signal.removeEventListener("abort", stop);
    }
    onState && onState(false);
    await sleep(STREAM_RETRY_MS[Math.min(attempt, STREAM_RETRY_MS.length - 1)]);
  }
}

export function parseEvent(block) {
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
