// Picking a watch: scan, list the watches nearby nearest first with the code each watch face
// shows, and hand the one the clerk picks to the caller (sync at the counter, pair at the kiosk).

import { api } from "./api";
import type { WatchChoice } from "./bindings/WatchChoice";
import type { WatchWarning } from "./bindings/WatchWarning";
import { h, messageBox } from "./dom";
import type { Labels } from "./i18n";
import { type CommandError, type Invoke, toCommandError } from "./ipc";

export type { WatchChoice, WatchWarning };

/** How near a watch is, in words: the clerk picks the one on the counter, not the one in a bag. */
export function nearness(rssi: number | null, t: Labels): string {
  if (rssi === null) return t.signalUnknown;
  if (rssi >= -55) return t.signalNear;
  if (rssi >= -75) return t.signalMid;
  return t.signalFar;
}

export function errorBox(err: CommandError): HTMLElement {
  return messageBox("error", h("span", { id: "error-code", hidden: true }, err.code), err.message);
}

export interface PickerDeps {
  invoke: Invoke;
  t: Labels;
  /** Called with the watch picked; its outcome (or error) is shown in `status`. */
  onPick: (watch: WatchChoice) => Promise<void>;
}

/** A "find watches" button, the list it fills, and a status area below, in one section. */
export function watchPicker(deps: PickerDeps): {
  section: HTMLElement;
  status: HTMLElement;
  scan: HTMLButtonElement;
} {
  const { invoke, t } = deps;
  const list = h("ul", { id: "watch-list", class: "watch-list" });
  const status = h("div", { id: "watch-status", "aria-live": "polite" });
  const scan = h("button", { type: "button", id: "scan-watches", class: "primary" }, t.scanWatches);

  function busy(on: boolean): void {
    scan.disabled = on;
    for (const b of list.querySelectorAll("button")) b.disabled = on;
  }

  async function pick(w: WatchChoice): Promise<void> {
    busy(true);
    status.replaceChildren(h("p", { class: "working" }, t.connecting(w.short_code)));
    try {
      await deps.onPick(w);
      list.replaceChildren(); // done: the list is no longer what to look at
    } catch (e) {
      status.replaceChildren(errorBox(toCommandError(e)));
    } finally {
      busy(false);
      inView(status);
    }
  }

  scan.addEventListener("click", async () => {
    busy(true);
    list.replaceChildren();
    status.replaceChildren(h("p", { class: "working" }, t.scanning));
    try {
      const found = await api(invoke).scanWatches();
      status.replaceChildren(h("p", { class: "hint" }, found.length ? t.pickWatch : t.noWatches));
      list.replaceChildren(
        ...found.map((w) => {
          const b = h(
            "button",
            { type: "button", class: "watch-choice", "data-code": w.short_code },
            h("span", { class: "code" }, w.short_code),
            h("span", { class: "near" }, nearness(w.rssi, t)),
          );
          b.addEventListener("click", () => void pick(w));
          return h("li", {}, b);
        }),
      );
    } catch (e) {
      status.replaceChildren(errorBox(toCommandError(e)));
    } finally {
      busy(false);
    }
  });

  const section = h(
    "section",
    { id: "watch-step", class: "watch-step" },
    h("h2", {}, t.watchHeading),
    h("p", { class: "hint" }, t.watchHint),
    scan,
    status,
    list,
  );
  return { section, status, scan };
}

/** Scrolls `el` into view: an outcome below the fold is an outcome not seen. */
export function inView(el: HTMLElement): void {
  el.scrollIntoView?.({ block: "nearest" });
}

/** The watch's warnings (clock far off, battery low), each on its own line. */
export function warningLines(warnings: WatchWarning[]): HTMLElement[] {
  return warnings.map((w) => h("p", { class: "warning", "data-code": w.code }, w.message));
}
