// The sync status bar of both screens, kept in view at the top (sticky, so it never covers
// what is tapped): whether the central server answers, what waits to be sent, refused
// operations, the last good sync, and "send now". It asks Rust (`sync_status`) every few
// seconds; the background sync itself runs in Rust.

import { api } from "./api";
import type { SyncStatus } from "./bindings/SyncStatus";
import { h } from "./dom";
import { type Labels, type Lang, labels } from "./i18n";
import type { Invoke } from "./ipc";

export type { SyncStatus };

/** How often the bar asks, in milliseconds. */
export const STATUS_EVERY_MS = 3000;

let timer: ReturnType<typeof setInterval> | undefined;

/** The bar's parts: the status text (a polite live region) and "send now". */
interface Bar {
  bar: HTMLElement;
  text: HTMLElement;
  sendNow: HTMLButtonElement;
}

/** The bar, created once just before the screen (`before`). */
function bar(before: HTMLElement): Bar {
  const found = document.getElementById("sync-status");
  const text = document.getElementById("sync-text");
  const sendNow = document.getElementById("sync-send-now") as HTMLButtonElement | null;
  if (found && text && sendNow) return { bar: found, text, sendNow };
  const parts: Bar = {
    bar: h("div", { id: "sync-status", class: "sync-status" }),
    // role=status: a polite live region; it changes only when what it says changes.
    text: h("div", { id: "sync-text", class: "sync-text", role: "status" }),
    sendNow: h("button", {
      id: "sync-send-now",
      type: "button",
      class: "sync-send-now",
    }) as HTMLButtonElement,
  };
  parts.bar.append(parts.text, parts.sendNow);
  before.before(parts.bar);
  return parts;
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

/** Starts (or restarts) the bar: one refresh now, then every `STATUS_EVERY_MS`. "Send now"
 * asks the background sync for a sync at once and does not wait for it (`send_now`); the bar
 * then shows how it goes. */
export function startStatusBar(
  invoke: Invoke,
  lang: () => Lang,
  before: HTMLElement,
): () => Promise<void> {
  const { bar: el, text, sendNow } = bar(before);
  let shown = "";
  let sending = false;
  const label = () => {
    const t = labels(lang());
    sendNow.textContent = sending ? t.syncSending : t.syncSendNow;
  };
  const refresh = async () => {
    try {
      const s = await api(invoke).syncStatus();
      el.hidden = false;
      sendNow.hidden = !s.provisioned;
      label();
      // Rendered again only when something changed, so that a screen reader hears a change
      // once rather than the whole bar every few seconds.
      const key = `${lang()} ${JSON.stringify(s)}`;
      if (key !== shown) {
        renderStatus(text, s, labels(lang()));
        shown = key;
      }
    } catch {
      // The terminal did not start: the screen already says why; the bar stays hidden.
      el.hidden = true;
      text.replaceChildren();
      shown = "";
    }
  };
  sendNow.onclick = async () => {
    if (sending) return;
    sending = true;
    label();
    try {
      await api(invoke).sendNow();
    } catch {
      // Not provisioned, or the terminal did not start: the bar already says so.
    }
    setTimeout(() => {
      sending = false;
      void refresh();
    }, SENDING_SHOWN_MS);
  };
  if (timer !== undefined) clearInterval(timer);
  timer = setInterval(() => void refresh(), STATUS_EVERY_MS);
  void refresh();
  return refresh;
}

/** How long "sending" shows on the button after a press, in milliseconds. */
const SENDING_SHOWN_MS = 1500;
