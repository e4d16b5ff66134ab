// Job detail: header facts, progress, error with stack trace, result, step timeline,
// child jobs, and the log panel with live tail while the job runs (seed 004).

import { api, downloadWithToken, getToken } from "../api.js";
import { errorState, facts, liveIndicator, loading, progressBar, statusBadge } from "../components.js";
import { disclosure, h } from "../dom.js";
import { elapsedMs, formatDuration, formatJson, isLive, preciseMs, timeEl } from "../format.js";
import { tailJobLogs } from "../live.js";
import { createLogPanel } from "../logpanel.js";
import { href, reload, replaceQuery } from "../router.js";

const LOG_PAGE = 1000;
const DETAIL_REFRESH_MS = 1000;

export async function jobView({ root, params, query, signal }) {
  const jobId = params.id;
  root.append(loading("Loading job…"));
  let job;
  try {
    job = await api.job(jobId, { signal });
  } catch (err) {
    if (err.name === "AbortError") return;
    root.replaceChildren(errorState(err, {
      retry: err.kind === "not_found" ? null : reload,
      notFound: {
        title: "Job not found",
        hint: `No job has the id “${jobId}”. It may not have arrived yet, or retention removed it.`,
        link: h("a", { class: "button", href: "#/jobs" }, "Back to the jobs list"),
      },
    }));
    return;
  }

  document.title = `${job.name || job.id} · jobtrail`;
  const indicator = liveIndicator();
  const summary = h("div", { class: "job-summary" });
  const stepFilter = h("select", { class: "step-filter", "aria-label": "Filter by step" });
  // Lifecycle records (progress updates, starts, heartbeats) are hidden unless asked for.
  const eventsToggle = h("input", { type: "checkbox", class: "events-toggle" });
  const eventsFilter = h("label", { class: "events-filter" }, eventsToggle, " Progress updates");
  let filters = {
    q: query.get("q") || "",
    level: (query.get("level") || "").split(",").filter(Boolean),
    step: query.get("step") || "",
    // One run of a step (its span id), when a step of that name ran more than once.
    span_id: query.get("span_id") || "",
    events: query.get("events") === "true" ? "true" : "",
  };
  eventsToggle.checked = Boolean(filters.events);
  const panel = createLogPanel({
    initial: filters,
    controls: [stepFilter, eventsFilter],
    onChange: (next) => setFilters({ ...filters, ...next }),
    loadOlder: () => loadOlder(),
  });
  stepFilter.addEventListener("change", () => {
    const value = stepFilter.value;
    setFilters(value.startsWith(RUN_PREFIX)
      ? { ...filters, step: "", span_id: value.slice(RUN_PREFIX.length) }
      : { ...filters, step: value, span_id: "" });
  });
  eventsToggle.addEventListener("change", () => setFilters({ ...filters, events: eventsToggle.checked ? "true" : "" }));
  root.replaceChildren(
    h("p", { class: "crumbs" }, h("a", { href: "#/jobs" }, "← Jobs")),
    summary,
    h("h2", { id: "logs-heading" }, "Logs ", indicator,
      h("a", { class: "download", href: `/api/jobs/${encodeURIComponent(jobId)}/logs?format=txt`,
               download: "", title: "All of this job's log records as a text file (also ?format=csv or jsonl)",
               onclick: (event) => {
                 if (!getToken()) return;  // a plain link: the browser downloads it
                 event.preventDefault();
                 const link = event.currentTarget;
                 downloadWithToken(link).catch((err) => {
                   link.textContent = "Download failed";
                   link.title = err.message;
                 });
               } },
        "Download")),
    panel.el,
  );

  // -- summary (header, progress, error, result, steps, children) -------------------------
  let shownSignature = "";
  function renderSummary() {
    const { log_counts: counts, ...rest } = job;
    panel.setCounts(counts);
    fillStepFilter(job.steps);
    const signature = JSON.stringify(rest) + (isLive(job.status) ? Math.floor(Date.now() / 1000) : "");
    if (signature === shownSignature) return;
    shownSignature = signature;
    const focusKey = document.activeElement?.dataset?.key;
    const openStack = summary.querySelector(".stack-toggle")?.getAttribute("aria-expanded") === "true";
    summary.replaceChildren(...summaryParts(job, { openStack, onStep: (step) => setFilters(stepFilterOf(job.steps, step, filters)) }));
    if (focusKey) summary.querySelector(`[data-key="${CSS.escape(focusKey)}"]`)?.focus();
  }

  function fillStepFilter(steps) {
    const names = [...new Set(steps.map((s) => s.name).filter(Boolean))];
    if (filters.step && !names.includes(filters.step)) names.push(filters.step);
    // A name that ran more than once also gets one entry per run.
    const options = [["", "All steps"]];
    for (const name of names) {
      options.push([name, name]);
      const runs = steps.filter((s) => s.name === name);
      if (runs.length > 1) runs.forEach((s, i) => options.push([RUN_PREFIX + s.span_id, `${name} #${i + 1}`]));
    }
    const current = [...stepFilter.options].map((o) => o.value).join("\n");
    if (current !== options.map(([v]) => v).join("\n")) {
      stepFilter.replaceChildren(...options.map(([value, label]) => h("option", { value }, label)));
    }
    stepFilter.value = stepFilterValue(filters);
  }

  // -- logs ------------------------------------------------------------------------------
  let tail = null; // AbortController of the running tail
  let firstId = null;
  let lastId = 0;
  // What the log requests, the URL and the live tail are filtered by.
  const logFilters = () => ({ q: filters.q, level: filters.level, step: filters.step, span_id: filters.span_id, events: filters.events });
  const logParams = () => ({ job: jobId, ...logFilters() });

  function setFilters(next) {
    filters = next;
    stepFilter.value = stepFilterValue(filters);
    eventsToggle.checked = Boolean(filters.events);
    replaceQuery(logFilters());
    loadLogs();
  }

  async function loadLogs() {
    tail?.abort();
    tail = new AbortController();
    signal.addEventListener("abort", () => tail.abort(), { once: true });
    const mine = tail.signal;
    try {
      const page = await api.logs({ ...logParams(), limit: LOG_PAGE }, { signal: mine });
      if (mine.aborted) return;
      panel.clearMessage();
      firstId = page.logs[0]?.id ?? null;
      lastId = page.logs.at(-1)?.id ?? lastId;
      panel.show(page.logs, { more: page.logs.length >= LOG_PAGE });
    } catch (err) {
      if (err.name === "AbortError") return;
      panel.setMessage(errorState(err, { retry: loadLogs }));
      return;
    }
    if (isLive(job.status)) startTail(mine);
    else indicator.set("");
  }

  async function loadOlder() {
    if (firstId === null) return false;
    const page = await api.logs({ ...logParams(), before_id: firstId, limit: LOG_PAGE }, { signal });
    if (page.logs.length) {
      firstId = page.logs[0].id;
      panel.prepend(page.logs);
    }
    return page.logs.length >= LOG_PAGE;
  }

  function startTail(mine) {
    // The tail gives the job row (status, progress); steps and counts come from the
    // detail, fetched at most once a second and always once more after the last change.
    let refreshAt = 0;
    let timer = null;
    const refresh = () => {
      if (timer) return;
      timer = setTimeout(() => {
        timer = null;
        if (mine.aborted) return;
        refreshAt = Date.now() + DETAIL_REFRESH_MS;
        api.job(jobId, { signal: mine }).then((detail) => { job = detail; renderSummary(); }, () => {});
      }, Math.max(0, refreshAt - Date.now()));
    };
    tailJobLogs(jobId, logFilters(), {
      afterId: lastId,
      signal: mine,
      onStatus: (state) => indicator.set(state),
      onLogs: (logs) => {
        lastId = logs.at(-1).id;
        panel.append(logs);
        refresh();
      },
      onJob: (row) => {
        if (["status", "progress", "current_step", "ended_at"].some((k) => row[k] !== job[k])) {
          job = { ...job, ...row };
          renderSummary();
        }
        refresh();
      },
    });
  }

  renderSummary();
  await loadLogs();
}

/** When a queued job was queued, and how long it waited (or has waited so far). */
function queuedFact(job) {
  if (!job.queued_at) return null;
  const queued = preciseMs(job.queued_at);
  const started = job.started_at ? preciseMs(job.started_at) : Date.now();
  const wait = formatDuration(Math.max(0, started - queued));
  return [timeEl(job.queued_at), ` (${job.started_at ? `waited ${wait}` : `waiting ${wait}`})`];
}

const RUN_PREFIX = "run:";

/** The step select's value for these filters: a run, a step name, or all. */
function stepFilterValue(filters) {
  return filters.span_id ? RUN_PREFIX + filters.span_id : filters.step;
}

/** Filters showing one step's logs: its name, or its run when the name ran more than once. */
function stepFilterOf(steps, step, filters) {
  const repeated = (steps || []).filter((s) => s.name === step.name).length > 1;
  return repeated && step.span_id
    ? { ...filters, step: "", span_id: step.span_id }
    : { ...filters, step: step.name || "", span_id: "" };
}

function summaryParts(job, { openStack, onStep }) {
  const live = isLive(job.status);
  const waiting = job.status === "pending" && job.queued_at && !job.started_at;
  const parts = [
    h("div", { class: "page-header" },
      h("h1", {}, job.name || job.id),
      h("div", { class: "actions" }, statusBadge(job.status),
        job.trace_id ? h("a", { class: "button", href: href(`/traces/${job.trace_id}`, { job: job.id }), dataset: { key: "trace" } }, "Trace waterfall") : null),
    ),
    facts([
      ["ID", h("code", { class: "id" }, job.id)],
      ["Type", job.type ? h("a", { href: href("/jobs", { type: job.type }) }, job.type) : null],
      ["Operation", job.operation],
      ["Owner", job.owner],
      ["Service", job.service],
      ["Queued", queuedFact(job)],
      ["Started", job.started_at ? timeEl(job.started_at) : waiting ? "not yet: waiting in its queue" : null],
      ["Ended", job.ended_at ? timeEl(job.ended_at) : waiting ? null : live ? "running" : null],
      ["Duration", waiting ? null : formatDuration(elapsedMs(job)) + (live ? " so far" : "")],
      ["Attempt", job.attempt ? `#${job.attempt}${job.attempt > 1 ? ` (${job.attempt - 1} ${job.attempt === 2 ? "retry" : "retries"})` : ""}` : null],
      ["Parent", job.parent_job_id ? h("a", { href: href(`/jobs/${encodeURIComponent(job.parent_job_id)}`), dataset: { key: "parent" } }, job.parent_job_id) : null],
      ["Trace", job.trace_id ? h("a", { href: href(`/traces/${job.trace_id}`, { job: job.id }) }, h("code", {}, job.trace_id)) : null],
      ["Cancelled", job.cancel_reason],
    ]),
  ];
  if (live) {
    parts.push(h("div", { class: `job-progress status-${job.status}` }, progressBar(job.progress ?? 0, job.current_step || "")));
  }
  if (job.error || job.stack_trace) {
    const stack = job.stack_trace
      ? disclosure("Stack trace", () => h("pre", { class: "stack-trace" }, job.stack_trace), { open: openStack, className: "stack-toggle" })
      : null;
    parts.push(h("section", { class: "error-box", "aria-label": "Error" },
      h("h2", {}, "Error"),
      h("p", { class: "error-message" },
        job.error_type && !(job.error || "").startsWith(job.error_type) ? h("strong", {}, `${job.error_type}: `) : null,
        job.error || ""),
      stack ? [stack.button, stack.body] : null,
    ));
  }
  if (job.result !== null && job.result !== undefined) {
    parts.push(h("section", { class: "result-box" }, h("h2", {}, "Result"), h("pre", {}, formatJson(job.result))));
  }
  parts.push(stepTimeline(job, onStep));
  if (job.children?.length) parts.push(childList(job));
  if (Object.keys(job.attributes || {}).length) {
    const attrs = disclosure("Attributes", () => h("pre", {}, formatJson(job.attributes)));
    parts.push(h("section", { class: "attributes-box" }, attrs.button, attrs.body));
  }
  return parts;
}

function stepTimeline(job, onStep) {
  const steps = job.steps || [];
  const section = h("section", { class: "steps", "aria-labelledby": "steps-heading" },
    h("h2", { id: "steps-heading" }, `Steps${job.total_steps ? ` (${steps.length} of ${job.total_steps})` : ""}`));
  if (!steps.length) {
    section.append(h("p", { class: "muted" }, "This job has no steps."));
    return section;
  }
  const jobStart = preciseMs(job.started_at);
  const jobEnd = job.ended_at ? preciseMs(job.ended_at) : Date.now();
  const total = Math.max(1, jobEnd - jobStart);
  const list = h("ol", { class: "step-list" });
  for (const [i, step] of steps.entries()) {
    const start = preciseMs(step.started_at);
    const duration = elapsedMs(step) ?? 0;
    const left = Number.isNaN(start) || Number.isNaN(jobStart) ? 0 : ((start - jobStart) / total) * 100;
    const width = Math.max(0.6, (duration / total) * 100);
    list.append(h("li", { class: `step status-${step.status}`, dataset: { step: step.name || "" } },
      h("div", { class: "step-head" },
        h("span", { class: "step-seq" }, step.seq ?? i + 1),
        h("button", {
          type: "button",
          class: "linkish step-name",
          title: "Show this step's logs",
          dataset: { key: `step-${i}` },
          onclick: () => onStep(step),
        }, step.name || "(unnamed)"),
        statusBadge(step.status),
        h("span", { class: "step-duration" }, formatDuration(duration), step.status === "running" ? "…" : ""),
      ),
      h("div", { class: "step-bar", "aria-hidden": "true" },
        h("span", { style: { left: `${Math.min(99.4, Math.max(0, left))}%`, width: `${Math.min(100, width)}%` } })),
      step.error ? h("p", { class: "step-error" }, step.error) : null,
      step.status === "skipped" && step.attributes?.skip_reason
        ? h("p", { class: "step-note" }, `Skipped: ${step.attributes.skip_reason}`) : null,
    ));
  }
  section.append(list);
  return section;
}

function childList(job) {
  const more = job.child_count > job.children.length ? job.child_count - job.children.length : 0;
  return h("section", { class: "children", "aria-labelledby": "children-heading" },
    h("h2", { id: "children-heading" }, `Child jobs (${job.child_count})`),
    h("ul", { class: "child-list" },
      job.children.map((child) => h("li", {},
        statusBadge(child.status),
        h("a", { href: href(`/jobs/${encodeURIComponent(child.id)}`) }, child.name || child.id),
        h("span", { class: "tag" }, child.type || "untyped"),
        h("span", { class: "muted" }, formatDuration(elapsedMs(child))),
      ))),
    more ? h("a", { href: href("/jobs", { parent: job.id }) }, `and ${more} more…`) : null,
  );
}
