// All logs — job, step and system (records that belong to no job, seed 001) — with
// type, level, category and service filters, and a live tail.

import { api } from "../api.js";
import { errorState, liveIndicator, pageHeader } from "../components.js";
import { debounce, h } from "../dom.js";
import { tailLogs } from "../live.js";
import { createLogPanel } from "../logpanel.js";
import { replaceQuery } from "../router.js";

const PAGE = 1000;
const TYPES = [["", "All types"], ["job", "Job"], ["step", "Step"], ["system", "System (no job)"]];

export async function logsView({ root, query, signal }) {
  document.title = "Logs · jobtrail";
  let filters = {
    type: query.get("type") || "",
    category: query.get("category") || "",
    service: query.get("service") || "",
    q: query.get("q") || "",
    level: (query.get("level") || "").split(",").filter(Boolean),
  };
  const type = h("select", { "aria-label": "Log type" },
    TYPES.map(([v, label]) => h("option", { value: v, selected: v === filters.type }, label)));
  const text = (name, label) => h("input", {
    type: "search", name, value: filters[name], placeholder: label, "aria-label": label, autocomplete: "off", class: "small-input",
  });
  const category = text("category", "Category");
  const service = text("service", "Service");
  const indicator = liveIndicator();
  const panel = createLogPanel({
    initial: filters,
    showJob: true,
    controls: [type, category, service],
    onChange: (next) => setFilters({ ...filters, ...next }),
    loadOlder: () => loadOlder(),
  });
  const fromControls = () => setFilters({ ...filters, type: type.value, category: category.value.trim(), service: service.value.trim() });
  type.addEventListener("change", fromControls);
  const typed = debounce(fromControls, 350);
  category.addEventListener("input", typed);
  service.addEventListener("input", typed);
  root.append(pageHeader("Logs", indicator), panel.el);

  let tail = null;
  let firstId = null;
  const params = () => ({ type: filters.type, category: filters.category, service: filters.service, q: filters.q, level: filters.level });

  function setFilters(next) {
    filters = next;
    replaceQuery(params());
    load();
  }

  async function load() {
    tail?.abort();
    tail = new AbortController();
    signal.addEventListener("abort", () => tail.abort(), { once: true });
    const mine = tail.signal;
    let lastId = 0;
    try {
      const page = await api.logs({ ...params(), limit: PAGE }, { signal: mine });
      panel.clearMessage();
      firstId = page.logs[0]?.id ?? null;
      lastId = page.logs.at(-1)?.id ?? page.next_after_id ?? 0;
      panel.show(page.logs, { more: page.logs.length >= PAGE });
    } catch (err) {
      if (err.name === "AbortError") return;
      panel.setMessage(errorState(err, { retry: load }));
      return;
    }
    tailLogs(params(), {
      afterId: lastId,
      signal: mine,
      onLogs: (logs) => panel.append(logs),
      onStatus: (state) => indicator.set(state),
    });
  }

  async function loadOlder() {
    if (firstId === null) return false;
    const page = await api.logs({ ...params(), before_id: firstId, limit: PAGE }, { signal });
    if (page.logs.length) {
      firstId = page.logs[0].id;
      panel.prepend(page.logs);
    }
    return page.logs.length >= PAGE;
  }

  await load();
}
