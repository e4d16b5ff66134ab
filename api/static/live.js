// Live updates behind one small interface, so views do not care how they arrive.
//
// Each `tail*`/`watch*` function first tries the Server-Sent Events stream (replay after
// `last_event_id`, then live; EventSource resends Last-Event-ID on reconnect, so nothing is
// lost or repeated); if it does not open (endpoint missing, proxy in the way, a bearer
// token that EventSource cannot send), it polls the JSON API with `after_id` every second
// instead. Either way the view gets the same callbacks and stops everything by aborting
// its AbortSignal.
//
// Callbacks: onLogs(logs[]) with new records in id order, onJob(job) with the job row,
// onStatus("live" | "polling" | "reconnecting" | "ended").

import { api, apiUrl, getToken } from "./api.js";
import { FINAL_STATUSES } from "./format.js";

export const POLL_INTERVAL_MS = 1000;
const PAGE = 1000;
const MAX_BACKOFF_MS = 10000;
const OPEN_TIMEOUT_MS = 3000;

/** Streams known not to answer on this server: do not try them again on every view. */
const missingStreams = new Set();

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });

/**
 * Open an EventSource on `url`; resolve with it once open, or with null if it fails first.
 * `handlers` maps event names to callbacks taking the parsed JSON data.
 */
function openStream(url, handlers, signal, onStatus) {
  const key = url.split("?")[0];
  if (typeof EventSource === "undefined" || getToken() || missingStreams.has(key)) {
    return Promise.resolve(null);
  }
  return new Promise((resolve) => {
    const source = new EventSource(url);
    let opened = false;
    const fail = () => {
      source.close();
      missingStreams.add(key);
      resolve(null);
    };
    const timer = setTimeout(() => { if (!opened) fail(); }, OPEN_TIMEOUT_MS);
    source.addEventListener("open", () => {
      if (!opened) {
        opened = true;
        clearTimeout(timer);
        resolve(source);
      }
      onStatus("live");
    });
    source.addEventListener("error", () => {
      if (!opened) {
        clearTimeout(timer);
        fail();
      } else if (source.readyState !== EventSource.CLOSED) {
        onStatus("reconnecting"); // EventSource reconnects with Last-Event-ID by itself
      }
    });
    for (const [name, handler] of Object.entries(handlers)) {
      source.addEventListener(name, (event) => {
        let data = null;
        try {
          data = event.data ? JSON.parse(event.data) : null;
        } catch {
          return;
        }
        handler(data, source);
      });
    }
    signal.addEventListener("abort", () => { clearTimeout(timer); source.close(); }, { once: true });
  });
}

/**
 * Whether a streamed record passes the view's filters. The streams take the same filters
 * as the JSON API; checking again here keeps the view right with any server version.
 */
export function matchesFilters(log, filters) {
  const levels = [filters.level || []].flat().filter(Boolean);
  if (levels.length && !levels.includes(log.level)) return false;
  if (filters.step && log.step !== filters.step) return false;
  if (filters.span_id && log.step_span_id !== filters.span_id && log.span_id !== filters.span_id) return false;
  if (filters.job && log.job_id !== filters.job) return false;
  if (filters.service && log.service !== filters.service) return false;
  if (filters.category && !filters.category.split(",").includes(log.category)) return false;
  if (filters.type) {
    const kind = !log.job_id ? "system" : log.step ? "step" : "job";
    if (!filters.type.split(",").includes(kind)) return false;
  }
  if (log.event_name && !filters.events) return false;
  if (filters.q) {
    const q = filters.q.toLowerCase();
    const text = `${log.message ?? ""} ${JSON.stringify(log.data ?? {})}`.toLowerCase();
    if (!text.includes(q)) return false;
  }
  return true;
}

/** Call `step()` every interval until it returns false or the signal aborts; back off on errors. */
async function pollLoop(step, signal, onStatus, intervalMs = POLL_INTERVAL_MS) {
  let backoff = intervalMs;
  while (!signal.aborted) {
    let again;
    try {
      again = await step();
      backoff = intervalMs;
      onStatus("polling");
    } catch (err) {
      if (signal.aborted || err.name === "AbortError") return;
      onStatus("reconnecting");
      await sleep(backoff, signal);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      continue;
    }
    if (again === false) {
      onStatus("ended");
      return;
    }
    if (again !== "now") await sleep(intervalMs, signal);
  }
}

/**
 * Tail one job's logs (filtered like the log panel) and its status until it ends.
 * `afterId`: the last id already shown.
 */
export async function tailJobLogs(jobId, filters, { afterId, onLogs, onJob, onStatus = () => {}, signal }) {
  let last = afterId ?? 0;
  let ended = false;
  const finish = (src) => {
    if (ended) return;
    ended = true;
    src.close();
    onStatus("ended");
  };
  const source = await openStream(
    apiUrl(`/api/jobs/${encodeURIComponent(jobId)}/stream`, { ...filters, last_event_id: last }),
    {
      log: (log) => {
        if (!log || log.id <= last) return;
        last = log.id;
        if (matchesFilters(log, filters)) onLogs([log]);
      },
      job: (job, src) => {
        if (!job) return;
        onJob(job);
        // The job is over: take the records still in flight, then stop reconnecting.
        if (FINAL_STATUSES.has(job.status)) setTimeout(() => finish(src), 2000);
      },
      end: (_data, src) => finish(src),
    },
    signal,
    onStatus,
  );
  if (source || signal.aborted || ended) return;
  let finalPolls = 0;
  await pollLoop(async () => {
    const page = await api.jobLogs(jobId, { ...filters, after_id: last, limit: PAGE }, { signal });
    if (page.logs.length) {
      last = page.next_after_id ?? page.logs[page.logs.length - 1].id;
      onLogs(page.logs);
    }
    onJob(page.job);
    if (page.logs.length >= PAGE) return "now";
    // A finished job's last records may still be in flight: look twice more, then stop.
    if (FINAL_STATUSES.has(page.job.status)) return ++finalPolls < 3;
    return true;
  }, signal, onStatus);
}

/** Tail all logs matching `filters` (the logs page). */
export async function tailLogs(filters, { afterId, onLogs, onStatus = () => {}, signal }) {
  let last = afterId ?? 0;
  const source = await openStream(
    apiUrl("/api/logs/stream", { ...filters, last_event_id: last }),
    {
      log: (log) => {
        if (!log || log.id <= last) return;
        last = log.id;
        if (matchesFilters(log, filters)) onLogs([log]);
      },
    },
    signal,
    onStatus,
  );
  if (source || signal.aborted) return;
  await pollLoop(async () => {
    const page = await api.logs({ ...filters, after_id: last, limit: PAGE }, { signal });
    if (page.logs.length) {
      last = page.next_after_id ?? page.logs[page.logs.length - 1].id;
      onLogs(page.logs);
    }
    return page.logs.length >= PAGE ? "now" : true;
  }, signal, onStatus);
}

/**
 * Tell the jobs list when jobs change: `onChange(job | null)` from the jobs stream, or
 * `onChange(null)` every few seconds when polling (the list then refetches its page).
 */
export async function watchJobs(filters, { onChange, onStatus = () => {}, signal, intervalMs = 2000 }) {
  const source = await openStream(
    apiUrl("/api/jobs/stream", filters),
    { job: (job) => onChange(job) },
    signal,
    onStatus,
  );
  if (source || signal.aborted) return;
  await pollLoop(async () => { await onChange(null); return true; }, signal, onStatus, intervalMs);
}
