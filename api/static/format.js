// Formatting of times, durations and numbers. Times from the API are RFC 3339 UTC and are
// shown in the browser's time zone.

const dateTime = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric",
  hour: "2-digit", minute: "2-digit", second: "2-digit",
});
const timeOnly = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});
const dayAndTime = new Intl.DateTimeFormat(undefined, {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false,
});

export const TIME_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";

const FRACTION = /\.(\d+)(?=Z|[+-]\d\d:?\d\d$)/;

/**
 * Epoch milliseconds with the sub-millisecond part Date.parse drops (the API sends
 * microseconds; steps and spans of a fast job are often shorter than a millisecond).
 */
export function preciseMs(iso) {
  if (!iso) return NaN;
  const base = Date.parse(iso);
  const match = FRACTION.exec(iso);
  if (Number.isNaN(base) || !match) return base;
  return Math.floor(base) + (Number(`0.${match[1]}`) * 1000) % 1;
}

function parse(iso) {
  if (!iso) return null;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** "Nov 23, 2026, 19:56:46" in the browser's zone, or "—". */
export function formatDateTime(iso) {
  const date = parse(iso);
  return date ? dateTime.format(date) : "—";
}

/** "19:56:46.123" (log lines). */
export function formatClock(iso) {
  const date = parse(iso);
  if (!date) return "—";
  return `${timeOnly.format(date)}.${String(date.getMilliseconds()).padStart(3, "0")}`;
}

/** "Nov 23, 19:56" (chart axes). */
export function formatShort(iso) {
  const date = parse(iso);
  return date ? dayAndTime.format(date) : "—";
}

/** A <time> element: local text, the UTC instant in `datetime` and the tooltip. */
export function timeEl(iso, format = formatDateTime) {
  const el = document.createElement("time");
  el.textContent = format(iso);
  if (iso) {
    el.dateTime = iso;
    el.title = `${iso} (shown in ${TIME_ZONE})`;
  }
  return el;
}

/** Milliseconds as "850 ms", "12.3 s", "4m 05s", "2h 03m". */
export function formatDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

/** Duration of a job or step: its own, or time since start while it runs. */
export function elapsedMs(item) {
  if (item.duration_ms !== null && item.duration_ms !== undefined) return item.duration_ms;
  const start = parse(item.started_at);
  if (!start) return null;
  const end = parse(item.ended_at) || new Date();
  return Math.max(0, end - start);
}

export function formatPercent(fraction, digits = 1) {
  if (fraction === null || fraction === undefined) return "—";
  return `${(fraction * 100).toFixed(digits)}%`;
}

export function formatCount(n) {
  return (n ?? 0).toLocaleString();
}

/** Structured data as indented JSON text. */
export function formatJson(value) {
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

/** A one-line preview of log data: "rows=300 source=s3://…". */
export function dataPreview(data) {
  if (!data || typeof data !== "object") return "";
  return Object.entries(data)
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
}

export const FINAL_STATUSES = new Set(["completed", "failed", "cancelled"]);

/** Jobs that may still change: tail their logs. A `lost` job's span may still arrive. */
export function isLive(status) {
  return status === "pending" || status === "running" || status === "lost";
}
