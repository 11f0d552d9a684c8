// The sync status bar of both screens, kept in view at the top (sticky, so it never covers
// what is tapped): whether the central server answers, what
// waits to be sent, refused operations, and the last good sync. It asks Rust (`sync_status`)
// every few seconds; the background sync itself runs in Rust.

import { h } from "./dom";
import { type Labels, type Lang, labels } from "./i18n";
import type { Invoke } from "./ipc";

/** What `sync_status` answers. */
export interface SyncStatus {
  role: "kiosk" | "counter";
  provisioned: boolean;
  /** Whether the server answered the last request; null before the first try. */
  online: boolean | null;
  queued: number;
  in_flight: number;
  rejected: number;
  last_good_sync: string | null;
  last_error: string | null;
  last_pull: string | null;
}

/** How often the bar asks, in milliseconds. */
export const STATUS_EVERY_MS = 3000;

let timer: ReturnType<typeof setInterval> | undefined;

/** The bar's element, created once just before the screen (`before`). */
function bar(before: HTMLElement): HTMLElement {
  const found = document.getElementById("sync-status");
  if (found) return found;
  const el = h("div", { id: "sync-status", class: "sync-status", role: "status" });
  el.setAttribute("aria-live", "polite");
  before.before(el);
  return el;
}

/** Fills the bar from one status, in the language `t` speaks. */
export function renderStatus(el: HTMLElement, s: SyncStatus, t: Labels): void {
  const state = !s.provisioned
    ? "unprovisioned"
    : s.online === null
      ? "unknown"
      : s.online
        ? "online"
        : "offline";
  const text = {
    unprovisioned: t.syncUnprovisioned,
    unknown: t.syncUnknown,
    online: t.syncOnline,
    offline: t.syncOffline,
  }[state];
  const waiting = s.queued + s.in_flight;
  const parts: HTMLElement[] = [
    h("span", { class: `sync-state ${state}`, id: "sync-online" }, text),
    h(
      "span",
      { id: "sync-queued" },
      s.role === "kiosk" ? t.syncQueuedKiosk(waiting) : t.syncQueuedCounter(waiting),
    ),
  ];
  if (s.rejected > 0) parts.push(h("span", { class: "sync-rejected" }, t.syncRejected(s.rejected)));
  parts.push(
    h(
      "span",
      { class: "sync-last" },
      t.syncLast(s.last_good_sync ? s.last_good_sync.slice(11, 16) : null),
    ),
  );
  el.dataset.state = state;
  el.dataset.waiting = String(waiting);
  el.title = s.last_error ?? "";
  el.replaceChildren(...parts);
}

/** Starts (or restarts) the bar: one refresh now, then every `STATUS_EVERY_MS`. */
export function startStatusBar(
  invoke: Invoke,
  lang: () => Lang,
  before: HTMLElement,
): () => Promise<void> {
  const el = bar(before);
  const refresh = async () => {
    try {
      renderStatus(el, await invoke<SyncStatus>("sync_status"), labels(lang()));
    } catch {
      // The terminal did not start: the screen already says why; the bar stays empty.
      el.replaceChildren();
    }
  };
  if (timer !== undefined) clearInterval(timer);
  timer = setInterval(() => void refresh(), STATUS_EVERY_MS);
  void refresh();
  return refresh;
}
