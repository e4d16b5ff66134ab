// The log panel (job page and logs page): search box, level chips with counts, extra
// filters from the caller, expandable entries (data, stack trace), and the live-tail
// autoscroll of seed 004: it follows new lines, pauses when the user scrolls up, and
// resumes when they come back to the bottom (or tick "Follow").
//
// The panel shows and filters; loading is the caller's: it gets the filters through
// `onChange` and feeds records with `show`, `append` and `prepend`.

import { LEVELS, levelBadge } from "./components.js";
import { debounce, h } from "./dom.js";
import { dataPreview, formatClock, formatJson, timeEl } from "./format.js";
import { href } from "./router.js";

const MAX_ROWS = 5000;
const BOTTOM_SLACK_PX = 24;

/**
 * @param {object} opts
 * @param {{q?: string, level?: string[]}} opts.initial  filters from the URL
 * @param {Node[]} [opts.controls]  extra filter controls (step, type, category, ...)
 * @param {boolean} [opts.showJob]  link each record to its job
 * @param {(filters: {q: string, level: string[]}) => void} opts.onChange
 * @param {() => Promise<boolean>} [opts.loadOlder]  prepend older records; resolve "more?"
 */
export function createLogPanel({ initial = {}, controls = [], showJob = false, onChange, loadOlder }) {
  const levels = new Set(initial.level || []);
  const search = h("input", {
    type: "search",
    class: "log-search",
    placeholder: "Search messages and data",
    "aria-label": "Search logs",
    value: initial.q || "",
    autocomplete: "off",
  });
  const chips = new Map(
    LEVELS.map((level) => [level, h("button", {
      type: "button",
      class: `chip level-${level}`,
      dataset: { level },
      "aria-pressed": String(levels.has(level)),
      onclick: () => toggleLevel(level),
    }, level, h("span", { class: "count" }))]),
  );
  const follow = h("input", { type: "checkbox", checked: true, class: "follow" });
  const jump = h("button", { type: "button", class: "jump button", hidden: true, onclick: () => resume() }, "");
  const older = h("button", { type: "button", class: "button subtle older", hidden: true, onclick: () => fetchOlder() }, "Load older lines");
  const list = h("ol", { class: "log-list", "aria-label": "Log lines" });
  const empty = h("p", { class: "state state-empty log-empty", hidden: true }, "No log lines match.");
  const scroller = h("div", { class: "log-scroll", tabindex: "0", "aria-label": "Log lines, scrollable" }, older, list, empty);
  const footer = h("div", { class: "log-footer" },
    h("label", { class: "follow-label" }, follow, " Follow new lines"),
    jump,
    h("span", { class: "log-total muted" }),
  );
  const el = h("section", { class: "log-panel", "aria-label": "Logs" },
    h("div", { class: "log-toolbar" },
      search,
      h("div", { class: "chips", role: "group", "aria-label": "Filter by level" }, [...chips.values()]),
      controls,
    ),
    scroller,
    footer,
  );

  let unseen = 0;
  const filters = () => ({ q: search.value.trim(), level: [...levels] });
  const changed = () => onChange(filters());
  const typed = debounce(changed, 300);
  search.addEventListener("input", typed);
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { typed.cancel(); changed(); }
  });

  function toggleLevel(level) {
    if (levels.has(level)) levels.delete(level);
    else levels.add(level);
    chips.get(level).setAttribute("aria-pressed", String(levels.has(level)));
    changed();
  }

  // -- autoscroll -------------------------------------------------------------------------
  const atBottom = () =>
    scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight <= BOTTOM_SLACK_PX;
  // The scroll event of our own autoscroll arrives later, possibly after the user unticked
  // "Follow": remember where it lands so that event is not read as the user's scroll.
  let autoScrolledTo = -1;
  const toBottom = () => {
    const before = scroller.scrollTop;
    scroller.scrollTop = scroller.scrollHeight;
    if (scroller.scrollTop !== before) autoScrolledTo = scroller.scrollTop;
  };
  function resume() {
    follow.checked = true;
    unseen = 0;
    updateJump();
    toBottom();
  }
  scroller.addEventListener("scroll", () => {
    const ours = scroller.scrollTop === autoScrolledTo;
    autoScrolledTo = -1;
    if (ours) return;
    const bottom = atBottom();
    if (follow.checked !== bottom) {
      follow.checked = bottom;
      if (bottom) unseen = 0;
      updateJump();
    }
  }, { passive: true });
  follow.addEventListener("change", () => (follow.checked ? resume() : updateJump()));
  function updateJump() {
    jump.hidden = follow.checked || unseen === 0;
    jump.textContent = `↓ ${unseen} new line${unseen === 1 ? "" : "s"}`;
  }

  // -- rows -------------------------------------------------------------------------------
  function row(log) {
    const expandable = Boolean(
      (log.data && Object.keys(log.data).length) || log.stack_trace || log.exception_message,
    );
    const detail = h("div", { class: "log-detail", hidden: true });
    const toggle = h("button", {
      type: "button",
      class: "log-toggle",
      "aria-expanded": "false",
      "aria-label": "Show details",
      disabled: !expandable,
    }, h("span", { class: "caret", "aria-hidden": "true" }));
    const open = () => {
      if (!expandable) return;
      const show = detail.hidden;
      if (show && !detail.firstChild) detail.append(...details(log));
      detail.hidden = !show;
      toggle.setAttribute("aria-expanded", String(show));
      item.classList.toggle("open", show);
    };
    toggle.addEventListener("click", open);
    const item = h("li", { class: `log-row level-${log.level || "unknown"}`, dataset: { id: log.id, level: log.level || "" } },
      h("div", { class: "log-line" },
        toggle,
        timeEl(log.time, formatClock),
        levelBadge(log.level),
        log.step ? h("span", { class: "tag step-tag", title: "step" }, log.step) : null,
        showJob && log.job_id
          ? h("a", { class: "tag job-tag", href: href(`/jobs/${encodeURIComponent(log.job_id)}`) }, `job ${log.job_id}`)
          : null,
        !log.job_id && log.category ? h("span", { class: "tag", title: "category" }, log.category) : null,
        log.iostream ? h("span", { class: "tag" }, log.iostream) : null,
        h("span", { class: "log-message" }, log.message ?? ""),
        log.exception_type ? h("span", { class: "log-exc" }, log.exception_type) : null,
        h("span", { class: "log-preview" }, dataPreview(log.data)),
      ),
      detail,
    );
    // Clicking the line (not a link) opens it too: a bigger target than the caret.
    item.firstChild.addEventListener("click", (event) => {
      if (event.target.closest("a, button") || getSelection().toString()) return;
      open();
    });
    return item;
  }

  function details(log) {
    const parts = [];
    if (log.data && Object.keys(log.data).length) {
      parts.push(h("h4", {}, "Data"), h("pre", { class: "log-data" }, formatJson(log.data)));
    }
    if (log.exception_type || log.exception_message) {
      parts.push(h("h4", {}, "Exception"),
        h("p", { class: "exc-line" }, [log.exception_type, log.exception_message].filter(Boolean).join(": ")));
    }
    if (log.stack_trace) {
      parts.push(h("h4", {}, "Stack trace"), h("pre", { class: "stack-trace" }, log.stack_trace));
    }
    const ids = [
      log.service && `service ${log.service}`,
      log.trace_id && `trace ${log.trace_id}`,
      log.span_id && `span ${log.span_id}`,
      `log #${log.id}`,
    ].filter(Boolean);
    parts.push(h("p", { class: "muted small" }, ids.join(" · ")));
    return parts;
  }

  function trim() {
    while (list.childElementCount > MAX_ROWS) list.firstElementChild.remove();
  }

  function updateTotals() {
    const n = list.childElementCount;
    empty.hidden = n > 0;
    footer.querySelector(".log-total").textContent = `${n.toLocaleString()} line${n === 1 ? "" : "s"} shown`;
  }

  async function fetchOlder() {
    if (!loadOlder) return;
    older.disabled = true;
    try {
      older.hidden = !(await loadOlder());
    } finally {
      older.disabled = false;
    }
  }

  return {
    el,
    filters,
    /** Replace everything (a new filter): records in id order; `more` shows "Load older". */
    show(logs, { more = false } = {}) {
      list.replaceChildren(...logs.map(row));
      older.hidden = !more || !loadOlder;
      unseen = 0;
      updateTotals();
      resume();
    },
    /** New records at the bottom (live tail). */
    append(logs) {
      if (!logs.length) return;
      list.append(...logs.map(row));
      if (follow.checked) {
        trim();
        toBottom();
      } else {
        unseen += logs.length;
        updateJump();
      }
      updateTotals();
    },
    /** Older records at the top, keeping what the user looks at in place. */
    prepend(logs) {
      const before = scroller.scrollHeight;
      list.prepend(...logs.map(row));
      scroller.scrollTop += scroller.scrollHeight - before;
      updateTotals();
    },
    /** Level counts on the chips ({info: 12, ...}). */
    setCounts(counts) {
      for (const [level, chip] of chips) {
        chip.querySelector(".count").textContent = counts ? ` ${(counts[level] || 0).toLocaleString()}` : "";
      }
    },
    setMessage(node) {
      list.replaceChildren();
      older.hidden = true;
      empty.hidden = true;
      scroller.querySelector(".log-message-state")?.remove();
      if (node) {
        node.classList.add("log-message-state");
        scroller.append(node);
      }
    },
    clearMessage() {
      scroller.querySelector(".log-message-state")?.remove();
    },
    isFollowing: () => follow.checked,
  };
}
