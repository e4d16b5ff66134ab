// Trace waterfall: every span of a job's trace on one time axis, nested by parent;
// selecting a span shows its attributes and events.

import { api } from "../api.js";
import { errorState, facts, loading, pageHeader } from "../components.js";
import { h } from "../dom.js";
import { formatDuration, formatJson, preciseMs, timeEl } from "../format.js";
import { href } from "../router.js";

const KINDS = ["unspecified", "internal", "server", "client", "producer", "consumer"];
const STATUS = ["unset", "ok", "error"];
const TICKS = 4;

export async function traceView({ root, params, query, signal }) {
  const jobId = query.get("job");
  const back = jobId
    ? h("a", { href: href(`/jobs/${encodeURIComponent(jobId)}`) }, "← Job")
    : h("a", { href: "#/jobs" }, "← Jobs");
  root.append(h("p", { class: "crumbs" }, back), loading("Loading trace…"));
  let trace;
  try {
    trace = await api.trace(params.traceId, { signal });
  } catch (err) {
    if (err.name === "AbortError") return;
    root.lastChild.replaceWith(errorState(err, {
      notFound: { title: "Trace not found", hint: `No span of trace ${params.traceId} has been stored.` },
    }));
    return;
  }
  const rows = orderSpans(trace.spans);
  document.title = `Trace of ${rows[0]?.span.name || trace.trace_id} · jobtrail`;
  const t0 = Math.min(...rows.map((r) => r.start));
  const t1 = Math.max(...rows.map((r) => r.end));
  const total = Math.max(1, t1 - t0);
  const detail = h("section", { class: "span-detail", "aria-live": "polite" },
    h("p", { class: "muted" }, "Select a span to see its attributes."));

  let selected = null;
  const select = (button, row) => {
    selected?.setAttribute("aria-pressed", "false");
    button.setAttribute("aria-pressed", "true");
    selected = button;
    detail.replaceChildren(...spanDetail(row.span, jobId));
  };

  const list = h("ol", { class: "waterfall", "aria-label": "Spans by start time" });
  for (const row of rows) {
    const left = ((row.start - t0) / total) * 100;
    const width = Math.max(0.4, ((row.end - row.start) / total) * 100);
    const span = row.span;
    const button = h("button", {
      type: "button",
      class: `span-row kind-${spanKind(span)}${span.status_code === 2 ? " error" : ""}`,
      "aria-pressed": "false",
      dataset: { spanId: span.span_id },
    },
      h("span", { class: "span-label", style: { paddingInlineStart: `${Math.min(row.depth, 8) * 0.9}rem` } },
        h("span", { class: "span-name" }, span.name || span.span_id),
        h("span", { class: "span-kind tag" }, spanKind(span)),
        h("span", { class: "span-ms" }, formatDuration(span.duration_ms ?? row.end - row.start))),
      h("span", { class: "span-track" },
        h("span", { class: "span-bar", style: { left: `${Math.min(left, 99.6)}%`, width: `${Math.min(width, 100 - Math.min(left, 99.6))}%` } })),
    );
    button.addEventListener("click", () => select(button, row));
    list.append(h("li", {}, button));
  }

  root.replaceChildren(
    h("p", { class: "crumbs" }, back),
    pageHeader(rows[0]?.span.name ? `Trace of ${rows[0].span.name}` : "Trace"),
    facts([
      ["Trace ID", h("code", { class: "id" }, trace.trace_id)],
      ["Spans", `${trace.spans.length}${trace.truncated ? " (truncated)" : ""}`],
      ["Duration", formatDuration(total)],
      ["Started", timeEl(new Date(t0).toISOString())],
    ]),
    h("div", { class: "legend" },
      ["job", "step", "span"].map((k) => h("span", { class: `legend-item kind-${k}` }, h("i"), k)),
      h("span", { class: "legend-item error" }, h("i"), "error")),
    h("div", { class: "waterfall-wrap" }, axis(total), list),
    detail,
  );
}

/** Spans depth-first by start time, with their depth; spans whose parent is missing are roots. */
function orderSpans(spans) {
  const ids = new Set(spans.map((s) => s.span_id));
  const children = new Map();
  const rows = spans.map((span) => {
    const start = preciseMs(span.start_time);
    // duration_ms keeps sub-millisecond precision that Date.parse drops.
    const end = span.duration_ms !== null && span.duration_ms !== undefined
      ? start + span.duration_ms
      : span.end_time ? preciseMs(span.end_time) : start;
    return { span, start, end: Math.max(end, start), depth: 0 };
  });
  for (const row of rows) {
    const parent = ids.has(row.span.parent_span_id) ? row.span.parent_span_id : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(row);
  }
  const out = [];
  const seen = new Set();
  const visit = (parent, depth) => {
    for (const row of (children.get(parent) || []).sort((a, b) => a.start - b.start)) {
      if (seen.has(row)) continue;
      seen.add(row);
      row.depth = depth;
      out.push(row);
      visit(row.span.span_id, depth + 1);
    }
  };
  visit(null, 0);
  // A parent cycle (bad client data) leaves spans unreached: show them flat, not lose them.
  for (const row of rows) if (!seen.has(row)) out.push(row);
  return out;
}

function spanKind(span) {
  const attrs = span.attributes || {};
  if ("job.step" in attrs || "cicd.pipeline.task.name" in attrs) return "step";
  if ("job.type" in attrs || "cicd.pipeline.name" in attrs) return "job";
  return "span";
}

function axis(total) {
  const ticks = [];
  for (let i = 0; i <= TICKS; i++) {
    ticks.push(h("span", { class: "tick", style: { left: `${(i / TICKS) * 100}%` } }, formatDuration((total * i) / TICKS)));
  }
  return h("div", { class: "axis", "aria-hidden": "true" }, h("span", { class: "span-label" }), h("span", { class: "axis-track" }, ticks));
}

function spanDetail(span, jobId) {
  const attrs = Object.entries(span.attributes || {}).sort(([a], [b]) => a.localeCompare(b));
  const jobAttr = span.attributes?.["job.id"];
  return [
    h("h2", {}, span.name || span.span_id),
    facts([
      ["Span ID", h("code", {}, span.span_id)],
      ["Parent", span.parent_span_id ? h("code", {}, span.parent_span_id) : "—"],
      ["Service", span.service],
      ["Kind", KINDS[span.kind ?? 0] || String(span.kind)],
      ["Status", `${STATUS[span.status_code ?? 0] || span.status_code}${span.status_message ? `: ${span.status_message}` : ""}`],
      ["Start", timeEl(span.start_time)],
      ["Duration", formatDuration(span.duration_ms)],
      ["Job", jobAttr && jobAttr !== jobId ? h("a", { href: href(`/jobs/${encodeURIComponent(jobAttr)}`) }, String(jobAttr)) : null],
    ]),
    h("h3", {}, "Attributes"),
    attrs.length
      ? h("table", { class: "kv" }, h("tbody", {}, attrs.map(([k, v]) =>
          h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, typeof v === "string" ? v : formatJson(v))))))
      : h("p", { class: "muted" }, "No attributes."),
    span.events?.length ? [h("h3", {}, "Events"), h("pre", {}, formatJson(span.events))] : null,
  ].flat().filter(Boolean);
}
