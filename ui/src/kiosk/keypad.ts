// The on-screen number pad of the kiosk's numeric fields.

import { h } from "../dom";
import type { Labels } from "../i18n";

/** A number pad that types into whichever numeric field was last chosen. */
export function keypad(
  t: Labels,
  fields: { input: HTMLInputElement; label: string }[],
): HTMLElement {
  let target = fields[0];
  const showing = h("p", { id: "keypad-target", class: "hint" });
  const show = () => {
    showing.textContent = target ? t.keypadFor(target.label) : "";
    for (const f of fields) f.input.classList.toggle("keypad-target", f === target);
  };
  for (const f of fields) {
    f.input.addEventListener("focus", () => {
      target = f;
      show();
    });
  }
  const press = (key: string) => {
    if (!target) return;
    const input = target.input;
    if (key === "back") input.value = input.value.slice(0, -1);
    else if (key === "clear") input.value = "";
    else if (input.value.length < input.maxLength || input.maxLength < 0) input.value += key;
    input.dispatchEvent(new Event("input", { bubbles: true }));
  };
  const keys = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "back", "0", "clear"].map((k) => {
    const label = k === "back" ? t.keyBack : k === "clear" ? t.keyClear : k;
    const b = h(
      "button",
      { type: "button", class: k.length === 1 ? "key" : "key key-edit", "data-key": k },
      label,
    );
    b.addEventListener("click", () => press(k));
    return b;
  });
  show();
  return h(
    "section",
    { id: "keypad", class: "keypad", "aria-label": t.keypad },
    showing,
    h("div", { class: "keys" }, ...keys),
  );
}
