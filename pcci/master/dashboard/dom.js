// The page's building blocks: elements made with text only (never HTML), the error
// banner, and the view's mount point and readiness (for the tests and the timings).
import {ApiError} from "./api.js";

export const timings = (window.pcciTimings = {});

export function el(tag, attributes, ...children) {
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

export const $ = (selector) => document.querySelector(selector);

export function showError(error) {
  $("#error-text").textContent = error instanceof ApiError
    ? error.message + (error.code && error.status ? " (" + error.code + ", HTTP " + error.status + ")" : "")
    : String(error.message || error);
  $("#error").hidden = false;
}

export function clearError() {
  $("#error").hidden = true;
  $("#error-text").textContent = "";
}

export function mount(...children) {
  const view = $("#view");
  view.replaceChildren(...children);
}

export function ready() {
  // Since the page began to load: what "the first view loads in" means (docs/performance.md).
  if (timings.firstReady === undefined) timings.firstReady = performance.now();
  document.body.dataset.ready = "yes";
}
