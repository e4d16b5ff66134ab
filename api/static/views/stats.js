// Stats: success rate, counts by status and type, p50/p95 per type, jobs and failures
// over time, recent errors, log counts by level and category.

import { api } from "../api.js";
import { bucketChart, countBars } from "../chart.js";
import { JOB_STATUSES, LEVELS, emptyState, errorState, loading, pageHeader, statusBadge } from "../components.js";
import { h } from "../dom.js";
import { formatCount, formatDuration, formatPercent, timeEl } from "../format.js";
import { href, navigate, reload } from "../router.js";

const RANGES = [["1h", "Last hour"], ["24h", "Last 24 h"], ["7d", "Last 7 days"], ["30d", "Last 30 days"], ["all", "All time"]];
const MAX_TYPES = 20;

export async function statsView({ root, query, signal }) {
  document.title = "Stats · jobtrail";
  const since = query.get("since") || "24h";
  const type = query.get("type") || "";
  // One owner's or one service's jobs (seed 000's per-project stats); exact match.
  const owner = query.get("owner") || "";
  const service = query.get("service") || "";
  const go = (change) => navigate("/stats", { since, type, owner, service, ...change });
  const range = h("select", { "aria-label": "Time range", onchange: (e) => go({ since: e.target.value }) },
    RANGES.map(([v, label]) => h("option", { value: v, selected: v === since }, label)));
  const scope = (name, value) => h("input", {
    type: "search", class: "stats-scope", placeholder: name, "aria-label": `Only the jobs of this ${name}`,
    value, onchange: (e) => go({ [name]: e.target.value.trim() }),
  });
  const body = h("div", {}, loading("Loading stats…"));
  root.append(pageHeader("Stats", type ? h("span", { class: "tag" }, `type ${type}`) : null,
    scope("owner", owner), scope("service", service), range), body);

  const params = { since: since === "all" ? null : since, type, owner, service };
  let stats;
  try {
    stats = await api.stats(params, { signal });
  } catch (err) {
    if (err.name === "AbortError") return;
    body.replaceChildren(errorState(err, { retry: reload }));
    return;
  }
  const { jobs, logs } = stats;
  if (!jobs.total && !logs.total) {
    body.replaceChildren(emptyState("No jobs or logs in this range", "Pick a longer range, or send some jobs (`jobtrail demo`)."));
    return;
  }
  const running = (jobs.by_status.running || 0) + (jobs.by_status.pending || 0);
  const card = (key, label, value, cls = "") =>
    h("div", { class: `card ${cls}`, dataset: { stat: key } }, h("span", { class: "card-value" }, value), h("span", { class: "card-label" }, label));
  const typeTable = typeBreakdown(jobs.by_type);
  body.replaceChildren(
    h("div", { class: "cards" },
      card("total", "Jobs", formatCount(jobs.total)),
      card("success_rate", "Success rate", formatPercent(jobs.success_rate), "ok"),
      card("completed", "Completed", formatCount(jobs.by_status.completed || 0), "ok"),
      card("failed", "Failed", formatCount(jobs.by_status.failed || 0), "bad"),
      card("running", "Running", formatCount(running)),
      card("p50", "Duration p50", formatDuration(jobs.duration_ms.p50)),
      card("p95", "Duration p95", formatDuration(jobs.duration_ms.p95)),
    ),
    h("section", { class: "panel wide" },
      h("h2", {}, `Jobs and failures over time `, h("span", { class: "muted small" }, `(${stats.bucket} buckets)`)),
      stats.buckets.length ? bucketChart(stats.buckets, { label: "Jobs and failures over time" }) : h("p", { class: "muted" }, "No jobs started in this range."),
      h("div", { class: "legend" }, ["failed", "completed", "other"].map((k) => h("span", { class: `legend-item bar-${k}` }, h("i"), k))),
    ),
    h("div", { class: "panels" },
      h("section", { class: "panel", dataset: { panel: "status" } }, h("h2", {}, "By status"),
        countBars(JOB_STATUSES.filter((s) => jobs.by_status[s]).map((s) => [s, jobs.by_status[s], `status-${s}`]),
          { linkFor: (s) => href("/jobs", { status: s }) })),
      h("section", { class: "panel", dataset: { panel: "errors" } }, h("h2", {}, "Recent errors"), recentErrors(stats.recent_errors)),
      h("section", { class: "panel wide", dataset: { panel: "types" } }, h("h2", {}, "By type"), typeTable.el),
      h("section", { class: "panel", dataset: { panel: "levels" } }, h("h2", {}, "Logs by level"),
        countBars(LEVELS.filter((l) => logs.by_level[l]).map((l) => [l, logs.by_level[l], `level-${l}`]),
          { linkFor: (l) => href("/logs", { level: l }), emptyText: "No logs." })),
      h("section", { class: "panel", dataset: { panel: "categories" } }, h("h2", {}, "Logs by category"),
        countBars(Object.entries(logs.by_category), { linkFor: (c) => href("/logs", { category: c }), emptyText: "No categorised logs." })),
    ),
  );
  // Per-type percentiles: one small stats query per type, in parallel, filled in as they come.
  await Promise.all(Object.keys(jobs.by_type).slice(0, MAX_TYPES).map(async (name) => {
    try {
      const one = await api.stats({ ...params, type: name }, { signal });
      typeTable.setDurations(name, one.jobs.duration_ms);
    } catch {
      typeTable.setDurations(name, null);
    }
  }));
}

function typeBreakdown(byType) {
  const cells = new Map();
  const rows = Object.entries(byType).sort(([, a], [, b]) => b.total - a.total).map(([name, counts]) => {
    const done = (counts.completed || 0) + (counts.failed || 0);
    const p50 = h("td", { class: "num" }, "…");
    const p95 = h("td", { class: "num" }, "…");
    cells.set(name, [p50, p95]);
    return h("tr", { dataset: { type: name } },
      h("th", { scope: "row" }, h("a", { href: href("/jobs", { type: name || null }) }, name || "(none)")),
      h("td", { class: "num", dataset: { label: "Total" } }, formatCount(counts.total)),
      h("td", { class: "num", dataset: { label: "Completed" } }, formatCount(counts.completed || 0)),
      h("td", { class: "num", dataset: { label: "Failed" } }, formatCount(counts.failed || 0)),
      h("td", { class: "num", dataset: { label: "Success" } }, done ? formatPercent((counts.completed || 0) / done) : "—"),
      p50, p95,
    );
  });
  const el = h("div", { class: "table-wrap" }, h("table", { class: "type-table" },
    h("thead", {}, h("tr", {}, ["Type", "Total", "Completed", "Failed", "Success", "p50", "p95"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows)));
  return {
    el,
    setDurations(name, durations) {
      const [p50, p95] = cells.get(name) || [];
      if (!p50) return;
      p50.textContent = durations ? formatDuration(durations.p50) : "—";
      p95.textContent = durations ? formatDuration(durations.p95) : "—";
    },
  };
}

function recentErrors(errors) {
  if (!errors.length) return h("p", { class: "muted" }, "No failed jobs in this range.");
  return h("ul", { class: "recent-errors" }, errors.map((e) => h("li", {},
    h("div", {}, statusBadge("failed"), " ", h("a", { href: href(`/jobs/${encodeURIComponent(e.id)}`) }, e.name || e.id),
      e.type ? h("span", { class: "tag" }, e.type) : null),
    h("div", { class: "error-line" }, errorText(e)),
    h("div", { class: "muted small" }, timeEl(e.ended_at)),
  )));
}

/** "Type: message", without doubling a type the message already starts with. */
function errorText(e) {
  if (!e.error) return e.error_type || "no message";
  return e.error_type && !e.error.startsWith(e.error_type) ? `${e.error_type}: ${e.error}` : e.error;
}
