// Small pieces shared by the views: badges, progress bars, empty/error states.

import { h } from "./dom.js";

export const LEVELS = ["debug", "info", "success", "warn", "error", "fatal"];
export const JOB_STATUSES = ["pending", "running", "completed", "failed", "cancelled", "lost"];

export function statusBadge(status) {
  const name = status || "unknown";
  return h("span", { class: `badge status-${name}`, dataset: { status: name } }, name);
}

export function levelBadge(level) {
  const name = level || "unknown";
  return h("span", { class: `level level-${name}`, dataset: { level: name } }, name);
}

/** A progress bar (0-100) with an accessible value and an optional caption. */
export function progressBar(percent, caption = "") {
  const value = Math.max(0, Math.min(100, Number(percent) || 0));
  return h("div", { class: "progress" },
    h("div", {
      class: "progress-track",
      role: "progressbar",
      "aria-valuemin": "0",
      "aria-valuemax": "100",
      "aria-valuenow": String(Math.round(value)),
      "aria-label": caption ? `Progress: ${caption}` : "Progress",
    }, h("div", { class: "progress-fill", style: { width: `${value}%` } })),
    h("span", { class: "progress-text" }, `${Math.round(value)}%`, caption ? ` · ${caption}` : ""),
  );
}

export function loading(what = "Loading…") {
  return h("p", { class: "state state-loading", role: "status" }, what);
}

export function emptyState(title, hint = "") {
  return h("div", { class: "state state-empty" },
    h("p", { class: "state-title" }, title),
    hint ? h("p", { class: "muted" }, hint) : null,
  );
}

/**
 * A readable error: server down, not found, auth needed, or the server's message.
 * `retry` adds a button; `notFound` overrides the 404 text.
 */
export function errorState(err, { retry, notFound } = {}) {
  let title = "Something went wrong";
  let hint = err?.message || String(err);
  if (err?.kind === "offline") {
    title = "The jobtrail server is not answering";
    hint = "Start it with `jobtrail serve`, then retry. The page keeps what it has shown.";
  } else if (err?.kind === "not_found") {
    title = notFound?.title || "Not found";
    hint = notFound?.hint || err.message;
  } else if (err?.kind === "auth") {
    title = "This server needs an API token";
    hint = "Enter the bearer token it was started with (kept in this browser only).";
  }
  return h("div", { class: `state state-error error-${err?.kind || "other"}`, role: "alert" },
    h("p", { class: "state-title" }, title),
    h("p", { class: "muted" }, hint),
    err?.kind === "auth" ? tokenForm() : null,
    notFound?.link || null,
    retry ? h("button", { type: "button", class: "button", onclick: retry }, "Retry") : null,
  );
}

function tokenForm() {
  const input = h("input", { type: "password", name: "token", autocomplete: "off", "aria-label": "API token" });
  return h("form", {
    class: "token-form",
    onsubmit: async (event) => {
      event.preventDefault();
      const [{ setToken }, { reload }] = await Promise.all([import("./api.js"), import("./router.js")]);
      setToken(input.value.trim());
      reload();
    },
  }, input, h("button", { class: "button", type: "submit" }, "Use token"));
}

/** The page title row: heading plus optional actions on the right. */
export function pageHeader(title, ...actions) {
  return h("div", { class: "page-header" }, h("h1", {}, title), h("div", { class: "actions" }, actions));
}

/** A definition list from [label, value] pairs; null values are skipped. */
export function facts(pairs) {
  const dl = h("dl", { class: "facts" });
  for (const [label, value] of pairs) {
    if (value === null || value === undefined || value === "") continue;
    dl.append(h("div", {}, h("dt", {}, label), h("dd", {}, value)));
  }
  return dl;
}

/** A live-status dot: "live", "polling", "reconnecting", "ended". */
export function liveIndicator() {
  const el = h("span", { class: "live-indicator", role: "status", "aria-live": "polite" });
  const labels = {
    live: "Live",
    polling: "Live",
    reconnecting: "Connection lost, retrying…",
    ended: "Finished",
  };
  const titles = {
    live: "New data is pushed by the server as it is stored",
    polling: "New data is fetched every second",
  };
  el.set = (state) => {
    el.dataset.state = state;
    el.textContent = labels[state] || "";
    el.title = titles[state] || "";
  };
  return el;
}
