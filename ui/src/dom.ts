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

/** Moves the keyboard's focus to `el` (a heading or a message) so that a screen reader reads
 * it and the next Tab goes on from there: after a screen changes, focus never drops to the
 * page's body. */
export function focusOn(el: HTMLElement | null | undefined): void {
  if (!el) return;
  if (!el.hasAttribute("tabindex") && !el.matches("button, input, a[href], select, textarea")) {
    el.setAttribute("tabindex", "-1");
  }
  el.focus({ preventScroll: false });
}
