// A tiny element builder: enough for screens without a framework.

type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | boolean | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c);
  }
  return el;
}

export function messageBox(kind: "error" | "done", ...children: Child[]): HTMLElement {
  return h(
    "div",
    { class: `message ${kind}`, role: kind === "error" ? "alert" : "status", "data-kind": kind },
    ...children,
  );
}
