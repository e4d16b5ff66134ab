import { h } from "../dom.js";

export async function notFoundView({ root, path }) {
  root.append(
    h("div", { class: "state state-error", role: "alert" },
      h("p", { class: "state-title" }, "No such page"),
      h("p", { class: "muted" }, `Nothing lives at ${path}.`),
      h("a", { href: "#/jobs", class: "button" }, "Go to the jobs list"),
    ),
  );
}
