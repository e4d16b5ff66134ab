// Tiny DOM helpers. Text always goes in as text nodes, never as HTML, so data from the
// API (log messages, attributes) cannot inject markup.

/**
 * Create an element: h("a", {href: "#/jobs", class: "x", onclick: fn}, "text", child).
 * Attributes: `class`, `dataset` (object), `style` (object), `on<event>` (listener),
 * booleans (true sets, false/null/undefined skips), everything else setAttribute.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") Object.assign(el.style, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

/** Append children: nodes, strings, numbers, arrays of them; null/false are skipped. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** An SVG element (charts): svg("rect", {x: 1, ...}). */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Call `fn` at most once per `ms`, with the last arguments (search boxes). */
export function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

/**
 * Call `fn` at most once per `ms`, and always once after the last call (trailing), so a
 * steady stream of events still gets handled while it lasts (a debounce would wait forever).
 */
export function throttle(fn, ms) {
  let last = 0;
  let timer = null;
  return (...args) => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      last = Date.now();
      fn(...args);
    }, Math.max(0, last + ms - Date.now()));
  };
}

/** A <details>-like toggle for a block, built on a real button (keyboard, aria-expanded). */
export function disclosure(label, makeBody, { open = false, className = "" } = {}) {
  const body = h("div", { class: "disclosure-body", hidden: !open });
  let filled = false;
  const button = h("button", {
    type: "button",
    class: `disclosure ${className}`.trim(),
    "aria-expanded": String(open),
    onclick: () => toggle(),
  }, h("span", { class: "caret", "aria-hidden": "true" }), label);
  function toggle(force) {
    const next = force ?? body.hidden;
    if (next && !filled) {
      append(body, [makeBody()]);
      filled = true;
    }
    body.hidden = !next;
    button.setAttribute("aria-expanded", String(next));
  }
  if (open) toggle(true);
  return { button, body, toggle };
}
