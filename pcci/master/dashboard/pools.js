// The pools view: newest first, filtered by status, paged; the first page follows new
// and ended pools.
import {api} from "./api.js";
import {listen} from "./cluster.js";
import {el, mount, ready, showError} from "./dom.js";
import {formatTime} from "./format.js";

const POOLS_PER_PAGE = 25;

export function stateSummary(states) {
  return Object.entries(states || {}).map(([state, count]) =>
    el("span", {class: "badge state-" + state}, count + " " + state.replace("_", " ")));
}

function poolLink(pool) {
  return el("a", {href: "#/pool/" + encodeURIComponent(pool.id), class: "mono pool-id"}, pool.id.slice(0, 13) + "…");
}

export async function showPools(signal, ignored, query) {
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
            el("th", {scope: "col", class: i === 4 ? "num hide-narrow" : (i >= 5 || i === 2 ? "hide-narrow" : "")}, name)))),
          body)),
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
      // On a phone the Jobs column alone says how it went (a running pool has running jobs).
      el("td", {class: "hide-narrow"}, el("span", {class: "badge state-" + pool.status}, pool.status)),
      el("td", {class: "wrap"}, stateSummary(pool.states)),
      el("td", {class: "num hide-narrow"}, pool.exitCode === null ? "" : String(pool.exitCode)),
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
