// Copy a file to workers from the browser: a file picked here, written on each target by
// POST /copy (atomically; docs/api.md). The request is made by sendCopy() alone, so a
// streamed copy can replace the one-request body without touching the form.
import {api} from "./api.js";
import {clearError, el, mount, ready, showError} from "./dom.js";
import {targetPicker} from "./picker.js";

// POST /copy carries the file in one request, base64 (4/3 of its size): the master takes
// at most about 768 KB with its defaults and says its own limit in a 413. This bound keeps
// a tab from reading (and holding twice) a file far beyond any master's, before reading it.
export const COPY_READ_LIMIT_BYTES = 64 * 1024 * 1024;

function base64Of(buffer) {
  const bytes = new Uint8Array(buffer);
  const parts = [];
  for (let i = 0; i < bytes.length; i += 0x8000) {
    parts.push(String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000)));
  }
  return btoa(parts.join(""));
}

// Sends one file: `where` is the picker's body (workers, exclude, batch, maxFailures),
// `file` a File, `options` {dest, mode, owner}. Resolves to the API's answer (the pool).
export async function sendCopy(where, file, options) {
  if (file.size > COPY_READ_LIMIT_BYTES) {
    throw new Error(file.name + " is " + file.size + " bytes: the dashboard copies files of at most "
                    + COPY_READ_LIMIT_BYTES + " bytes (pcci copy sends it from a shell)");
  }
  const body = Object.assign({}, where, {dest: options.dest, content: base64Of(await file.arrayBuffer())});
  if (options.mode) body.mode = options.mode;
  if (options.owner) body.owner = options.owner;
  return api("POST", "/copy", body);
}

export async function showCopy(signal) {
  const file = el("input", {id: "copy-file", name: "file", type: "file", required: true});
  const dest = el("input", {id: "dest", name: "dest", required: true, placeholder: "/etc/motd", spellcheck: "false"});
  const mode = el("input", {id: "mode", name: "mode", placeholder: "the replaced file's, else 0644", pattern: "0?[0-7]{3,4}",
                            spellcheck: "false"});
  const owner = el("input", {id: "owner", name: "owner", placeholder: "unchanged", spellcheck: "false"});
  const copy = el("button", {type: "submit", id: "copy"}, "Copy");
  const picker = targetPicker(copy, (count) => count === null ? "Copy" : "Copy to " + count + " worker(s)");
  const form = el("form", {id: "copy-form", class: "card"},
    el("label", {for: "copy-file"}, "File"), file,
    el("div", {class: "row"},
      el("div", {}, el("label", {for: "dest"}, "Destination (absolute path)"), dest),
      el("div", {class: "narrow"}, el("label", {for: "mode"}, "Mode"), mode),
      el("div", {class: "narrow"}, el("label", {for: "owner"}, "Owner"), owner)),
    picker.fields,
    el("p", {class: "muted"}, "Each worker writes it atomically, never through a symbolic link. "
       + "The file travels in one request: a master takes files of up to about 768 KB unless configured for more."),
    el("div", {class: "actions"}, picker.check, copy), picker.resolved);
  mount(el("h1", {}, "Copy a file"), form);
  ready();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!picker.isChecked() || !file.files.length) return;
    clearError();
    copy.disabled = true;
    try {
      const submitted = await sendCopy(picker.body(), file.files[0],
                                       {dest: dest.value.trim(), mode: mode.value.trim(), owner: owner.value.trim()});
      if (signal.aborted) return;
      location.hash = "#/pool/" + encodeURIComponent(submitted.id);
    } catch (error) {
      copy.disabled = false;
      showError(error);
    }
  });
  file.focus();
}
