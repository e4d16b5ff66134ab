// The jobs list: filters kept in the URL, newest first, child jobs nested under their
// parent, cursor paging, live refresh of the first page.

import { api } from "../api.js";
import { JOB_STATUSES, emptyState, errorState, liveIndicator, loading, pageHeader, progressBar, statusBadge } from "../components.js";
import { debounce, h, throttle } from "../dom.js";
import { elapsedMs, formatDuration, isLive, timeEl } from "../format.js";
import { watchJobs } from "../live.js";
import { href, replaceQuery } from "../router.js";

const TEXT_FILTERS = ["q", "type", "owner", "service"];
const SINCE_CHOICES = [["", "Any time"], ["1h", "Last hour"], ["24h", "Last 24 h"], ["7d", "Last 7 days"], ["30d", "Last 30 days"]];
const PAGE_SIZE = 50;

/** Filters from the URL query; only the known ones. */
function readFilters(query) {
  const filters = {};
  for (const key of [...TEXT_FILTERS, "status", "since", "until", "parent", "cursor"]) {
    const value = query.get(key);
    if (value) filters[key] = value;
  }
  return filters;
}

/** Nest child jobs under parents unless a filter could match a child on its own. */
function isNested(filters) {
  return !["q", "type", "owner", "service", "status", "parent"].some((key) => filters[key]);
}

export async function jobsView({ root, query, signal }) {
  document.title = "Jobs · jobtrail";
  let filters = readFilters(query);
  const expanded = new Set();
  const indicator = liveIndicator();
  const body = h("div", { class: "jobs-body" }, loading("Loading jobs…"));
  const form = filterForm(filters, (next) => {
    filters = next;
    replaceQuery(filters);
    reload();
  });
  root.append(pageHeader("Jobs", indicator), form, body);

  let lastSignature = "";
  async function load({ quiet = false } = {}) {
    const params = { ...filters, limit: PAGE_SIZE };
    if (isNested(filters)) params.parent = "none";
    try {
      const page = await api.jobs(params, { signal });
      const signature = JSON.stringify(page);
      if (quiet && signature === lastSignature) return;
      lastSignature = signature;
      await renderPage(page);
    } catch (err) {
      if (err.name === "AbortError") return;
      if (quiet && lastSignature) { indicator.set("reconnecting"); return; }
      lastSignature = "";
      body.replaceChildren(errorState(err, { retry: () => load() }));
    }
  }

  async function renderPage(page) {
    const focusKey = document.activeElement?.dataset?.key;
    const rows = [];
    for (const job of page.jobs) {
      rows.push(jobRow(job, 0, !isNested(filters)));
      if (expanded.has(job.id)) rows.push(...(await childRows(job.id, 1)));
    }
    const content = page.jobs.length
      ? [jobsTable(rows), pager(page)]
      : [emptyState(
          filters.cursor ? "No older jobs"
          : Object.keys(filters).length ? "No jobs match these filters"
          : "No jobs yet",
          Object.keys(filters).length
            ? "Clear the filters or widen the time range."
            : "Jobs appear here as soon as an application sends one (see `jobtrail demo`).",
        )];
    body.replaceChildren(...content);
    if (focusKey) body.querySelector(`[data-key="${CSS.escape(focusKey)}"]`)?.focus();
  }

  async function childRows(parentId, depth) {
    const page = await api.jobs({ parent: parentId, limit: 200 }, { signal });
    const rows = [];
    for (const child of page.jobs.slice().reverse()) {
      rows.push(jobRow(child, depth, false));
      if (expanded.has(child.id)) rows.push(...(await childRows(child.id, depth + 1)));
    }
    return rows;
  }

  function jobRow(job, depth, showParent) {
    const toggle = job.child_count > 0 && isNested(filters)
      ? h("button", {
          type: "button",
          class: "child-toggle",
          "aria-expanded": String(expanded.has(job.id)),
          dataset: { key: `toggle-${job.id}` },
          onclick: () => {
            if (expanded.has(job.id)) expanded.delete(job.id);
            else expanded.add(job.id);
            lastSignature = "";
            load({ quiet: true });
          },
        }, `${job.child_count} child job${job.child_count === 1 ? "" : "s"}`)
      : null;
    const running = isLive(job.status);
    return h("tr", { class: `job-row depth-${Math.min(depth, 4)}`, dataset: { jobId: job.id, status: job.status } },
      h("td", { class: "col-status" }, statusBadge(job.status)),
      h("td", { class: "col-name" },
        h("div", { class: "name-line", style: { paddingInlineStart: `${depth * 1.25}rem` } },
          depth ? h("span", { class: "nest", "aria-hidden": "true" }, "↳ ") : null,
          h("a", { href: href(`/jobs/${encodeURIComponent(job.id)}`), class: "job-link", dataset: { key: `job-${job.id}` } }, job.name || job.id),
          h("span", { class: "tag" }, job.type || "untyped"),
        ),
        h("div", { class: "sub-line muted", style: { paddingInlineStart: `${depth * 1.25}rem` } },
          h("code", { class: "id" }, job.id),
          showParent && job.parent_job_id
            ? h("span", {}, " · child of ", h("a", { href: href(`/jobs/${encodeURIComponent(job.parent_job_id)}`) }, job.parent_job_id))
            : null,
          toggle ? [" · ", toggle] : null,
        ),
        job.status === "failed" && job.error ? h("div", { class: "error-line" }, job.error) : null,
      ),
      h("td", { class: "col-progress" },
        running
          ? progressBar(job.progress ?? 0, job.current_step || "")
          : h("span", { class: "muted" }, job.total_steps ? `${job.total_steps} steps` : "")),
      h("td", { class: "col-owner", dataset: { label: "Owner" } }, job.owner || "—"),
      h("td", { class: "col-service", dataset: { label: "Service" } }, job.service || "—"),
      h("td", { class: "col-started", dataset: { label: "Started" } },
        !job.started_at && job.queued_at ? ["queued ", timeEl(job.queued_at)] : timeEl(job.started_at)),
      h("td", { class: "col-duration", dataset: { label: "Duration" } }, formatDuration(elapsedMs(job)), running ? "…" : ""),
      h("td", { class: "col-attempt", dataset: { label: "Attempt" } }, job.attempt ? `#${job.attempt}` : "—"),
    );
  }

  function pager(page) {
    const links = [];
    if (filters.cursor) links.push(h("a", { class: "button", href: href("/jobs", { ...filters, cursor: null }) }, "← Newest"));
    if (page.next_cursor) links.push(h("a", { class: "button", rel: "next", href: href("/jobs", { ...filters, cursor: page.next_cursor }) }, "Older jobs →"));
    return h("nav", { class: "pager", "aria-label": "Pages" }, links);
  }

  function reload() {
    lastSignature = "";
    body.replaceChildren(loading("Loading jobs…"));
    load();
  }

  await load();
  // Only the first page follows new jobs: older pages stay still while being read.
  if (!filters.cursor) {
    const refresh = throttle(() => load({ quiet: true }), 500);
    watchJobs({}, {
      signal,
      onChange: () => refresh(),
      onStatus: (state) => indicator.set(state),
    });
  }
}

function jobsTable(rows) {
  return h("div", { class: "table-wrap" },
    h("table", { class: "jobs-table" },
      h("caption", { class: "visually-hidden" }, "Jobs, newest first"),
      h("thead", {}, h("tr", {},
        ...["Status", "Job", "Progress", "Owner", "Service", "Started", "Duration", "Attempt"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows),
    ),
  );
}

function filterForm(filters, onChange) {
  const field = (name, label, input) =>
    h("label", { class: `field field-${name}` }, h("span", {}, label), input);
  const text = (name, placeholder) =>
    h("input", { type: "search", name, value: filters[name] || "", placeholder, autocomplete: "off" });
  const status = h("select", { name: "status" },
    h("option", { value: "" }, "Any status"),
    JOB_STATUSES.map((s) => h("option", { value: s, selected: filters.status === s }, s)),
  );
  const sinceChoices = SINCE_CHOICES.some(([v]) => v === (filters.since || ""))
    ? SINCE_CHOICES
    : [...SINCE_CHOICES, [filters.since, `Since ${filters.since}`]];
  const since = h("select", { name: "since" },
    sinceChoices.map(([v, label]) => h("option", { value: v, selected: (filters.since || "") === v }, label)));
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter jobs" },
    field("q", "Search", text("q", "name, id, type, error")),
    field("status", "Status", status),
    field("type", "Type", text("type", "any")),
    field("owner", "Owner", text("owner", "any")),
    field("service", "Service", text("service", "any")),
    field("since", "Started", since),
    filters.until ? h("span", { class: "tag" }, `until ${filters.until}`) : null,
    filters.parent ? h("span", { class: "tag" }, `children of ${filters.parent}`) : null,
    h("button", { type: "reset", class: "button subtle" }, "Clear"),
  );
  const collect = () => {
    const next = {};
    for (const el of form.elements) {
      if (el.name && el.value.trim()) next[el.name] = el.value.trim();
    }
    if (form.dataset.cleared !== "1") {
      if (filters.until) next.until = filters.until;
      if (filters.parent) next.parent = filters.parent;
    }
    return next; // a filter change starts again at the newest page (no cursor)
  };
  const changed = debounce(() => onChange(collect()), 350);
  form.addEventListener("input", (event) => (event.target.tagName === "SELECT" ? onChange(collect()) : changed()));
  form.addEventListener("submit", (event) => { event.preventDefault(); changed.cancel(); onChange(collect()); });
  form.addEventListener("reset", () => {
    form.dataset.cleared = "1";
    setTimeout(() => { changed.cancel(); onChange({}); });
  });
  return form;
}
