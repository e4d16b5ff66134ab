// Hash routing: "#/jobs?status=failed", "#/jobs/<id>", "#/traces/<trace_id>", "#/stats",
// "#/logs". Hash routes need no server-side fallback, so any static host works.
//
// A view is `async (ctx) => void` rendering into ctx.root; ctx.signal aborts when the user
// navigates away (stop timers, streams and fetches with it). Views that change their own
// filters call `replaceQuery`, which rewrites the URL without re-rendering.

const routes = [];

/** Register a view for a pattern like "/jobs/:id". */
export function route(pattern, view, nav) {
  const names = [];
  const regex = new RegExp(
    "^" + pattern.replace(/:(\w+)/g, (_m, name) => { names.push(name); return "([^/]+)"; }) + "/?$",
  );
  routes.push({ regex, names, view, nav });
}

export function parseHash(hash = location.hash) {
  const text = hash.replace(/^#/, "") || "/jobs";
  const [path, query = ""] = text.split("?");
  return { path: path || "/jobs", query: new URLSearchParams(query) };
}

/** "#/jobs" + {status: "failed"} -> "#/jobs?status=failed" (empty values dropped). */
export function href(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === "") continue;
    query.set(key, Array.isArray(value) ? value.join(",") : String(value));
  }
  const text = query.toString();
  return `#${path}${text ? `?${text}` : ""}`;
}

export function navigate(path, params = {}) {
  location.hash = href(path, params);
}

/** Rewrite the current URL's query without a re-render (filters typed into a view). */
export function replaceQuery(params) {
  const { path } = parseHash();
  history.replaceState(history.state, "", href(path, params));
}

let controller = null;
let mounted = null;

/** Render the current URL again (a "Retry" button), even if the hash did not change. */
export function reload() {
  return mounted ? render(mounted) : Promise.resolve();
}

async function render(root) {
  controller?.abort();
  controller = new AbortController();
  const { path, query } = parseHash();
  const match = routes
    .map((r) => ({ r, m: r.regex.exec(path) }))
    .find(({ m }) => m);
  document.querySelectorAll("[data-nav]").forEach((a) => {
    const current = match && a.dataset.nav === match.r.nav;
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  // Each render gets its own container: a slow view that finishes after the user moved on
  // writes into a detached node instead of over the new page.
  const container = document.createElement("div");
  container.className = "view";
  root.replaceChildren(container);
  if (!match) {
    const { notFoundView } = await import("./views/notfound.js");
    await notFoundView({ root: container, path, query, params: {}, signal: controller.signal });
    return;
  }
  const params = {};
  match.r.names.forEach((name, i) => { params[name] = decodeURIComponent(match.m[i + 1]); });
  const signal = controller.signal;
  try {
    await match.r.view({ root: container, path, query, params, signal });
  } catch (err) {
    if (err?.name !== "AbortError") throw err;
  }
}

/** Start routing into `root`; focus moves to the new content for keyboard users. */
export function start(root) {
  mounted = root;
  let previousPath = parseHash().path;
  window.addEventListener("hashchange", () => {
    const { path } = parseHash();
    const moved = path !== previousPath;
    previousPath = path;
    render(root).then(() => {
      // A view shows its content before it finishes loading: if the user already moved
      // focus into the new page meanwhile, leave it (and the scroll position) alone.
      const active = document.activeElement;
      const userMoved = active && active !== root && root.contains(active);
      if (moved && !userMoved) {
        window.scrollTo(0, 0);
        root.focus({ preventScroll: true });
      }
    });
  });
  return render(root);
}
