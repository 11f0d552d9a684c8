// The counter's redemption: a keyboard-wedge scan anywhere on the screen (or the camera, where
// there is one), the member's available points, the amount (and a card's PIN), the receipt
// with print and void, and the day's settlement with its CSV export. Rust decides; this screen
// shows what it answered.

import { api } from "./api";
import type { ReceiptView } from "./bindings/ReceiptView";
import type { Redeemed } from "./bindings/Redeemed";
import type { Scanned } from "./bindings/Scanned";
import type { SettlementView } from "./bindings/SettlementView";
import type { Tally } from "./bindings/Tally";
import type { Voided } from "./bindings/Voided";
import { type CameraDeps, cameraScanner } from "./camera";
import { focusOn, h, messageBox } from "./dom";
import { grouped } from "./format";
import type { Labels } from "./i18n";
import { type Invoke, type MemberView, toCommandError } from "./ipc";
import { errorBox } from "./watch";
import { classify, WedgeDetector } from "./wedge";

export type { ReceiptView, Redeemed, Scanned, SettlementView, Tally, Voided };

export interface RedeemDeps {
  invoke: Invoke;
  t: Labels;
  /** Shows the scanned member's week where the counter shows members. */
  /** Shows the scanned member, with the code scanned (the proof a new watch's pairing needs). */
  showMember?: (view: MemberView, token: string) => void;
  /** Called after something was queued, so the header's count can refresh. */
  onQueued?: () => void;
  /** Scanning with a camera: the button shows on the scan screen when a camera is present. */
  camera?: Omit<CameraDeps, "labels">;
}

/** A time in Seoul as HH:MM:SS. */
function kstTime(iso: string): string {
  const d = new Date(iso);
  const kst = new Date(d.getTime() + 9 * 3600 * 1000);
  return kst.toISOString().slice(11, 19);
}

/** A day and time in Seoul as YYYY-MM-DD HH:MM. */
function kstDateTime(iso: string): string {
  const kst = new Date(new Date(iso).getTime() + 9 * 3600 * 1000).toISOString();
  return `${kst.slice(0, 10)} ${kst.slice(11, 16)}`;
}

/** A printable page in a frame: what the printer gets, as the clerk sees it. */
function pageFrame(id: string, html: string): HTMLIFrameElement {
  const frame = h("iframe", { id, class: "page-frame", title: id });
  frame.srcdoc = html;
  return frame;
}

function printFrame(frame: HTMLIFrameElement): void {
  frame.contentWindow?.print();
}

/**
 * Listens for wedge scans on `target` (the whole document at the counter). A scan typed into
 * an input is taken back out of it, and its Enter does not reach the input.
 */
export function listenForScans(
  target: Document | HTMLElement,
  onScan: (text: string) => void,
): () => void {
  const detector = new WedgeDetector();
  const handler = (ev: Event) => {
    const e = ev as KeyboardEvent;
    const scan = detector.push(classify(e.key), e.timeStamp);
    if (!scan) return;
    e.preventDefault();
    e.stopPropagation();
    const el = e.target as HTMLInputElement | null;
    if (el && typeof el.value === "string" && el.value.endsWith(scan.text)) {
      el.value = el.value.slice(0, el.value.length - scan.text.length);
    }
    onScan(scan.text);
  };
  target.addEventListener("keydown", handler, true);
  return () => target.removeEventListener("keydown", handler, true);
}

/**
 * The redemption panel. Returns the element, `scan(text)` to feed it a scan, and `stop()`,
 * which turns its camera off.
 */
export function redeemPanel(deps: RedeemDeps): {
  section: HTMLElement;
  scan: (text: string) => Promise<void>;
  stop: () => void;
  /** The camera scanner, when the counter has camera support at all. */
  camera: ReturnType<typeof cameraScanner> | null;
} {
  const { invoke } = deps;
  const r = deps.t.redeem;
  const body = h("div", { id: "redeem-body" });
  const section = h(
    "section",
    { id: "redeem", class: "redeem", "aria-labelledby": "redeem-heading" },
    h("h2", { id: "redeem-heading" }, r.heading),
    body,
  );

  const camera = deps.camera ? cameraScanner({ ...deps.camera, labels: r.camera }) : null;

  /** Ready for the next code. After a redemption, a cancel or a refused scan (`moved`), the
   * focus goes to the panel's heading, so that the clerk's place is never lost. */
  function idle(note?: HTMLElement, moved = false): void {
    body.replaceChildren(
      ...(note ? [note] : []),
      h("p", { id: "scan-hint", class: "scan-hint" }, r.scanHint),
      ...(camera ? [camera.element] : []),
    );
    if (moved) focusOn(section.querySelector<HTMLElement>("#redeem-heading"));
  }

  async function scan(text: string): Promise<void> {
    camera?.stop();
    try {
      const s = await api(invoke).scanToken({ token: text });
      if (s.member && deps.showMember) deps.showMember(s.member, s.token);
      showScanned(s);
    } catch (e) {
      idle(errorBox(toCommandError(e)), true);
    }
  }

  function showScanned(s: Scanned): void {
    const amount = h("input", {
      id: "amount",
      inputmode: "numeric",
      autocomplete: "off",
      "aria-describedby": "amount-limits",
    });
    const pin = s.needs_pin
      ? h("input", {
          id: "pin",
          type: "password",
          inputmode: "numeric",
          maxlength: "6",
          autocomplete: "off",
        })
      : null;
    const status = h("div", { id: "redeem-status" });
    const go = h("button", { type: "button", id: "redeem-go", class: "primary" }, r.redeem);
    const cancel = h("button", { type: "button", id: "redeem-cancel" }, r.cancel);
    async function submit(): Promise<void> {
      const points = Number(amount.value.replace(/\D/g, ""));
      go.disabled = true;
      try {
        const done = await api(invoke).redeem({
          token: s.token,
          amount: points,
          pin: pin ? pin.value : null,
        });
        deps.onQueued?.();
        showReceipt(done);
      } catch (e) {
        status.replaceChildren(errorBox(toCommandError(e)));
        go.disabled = false;
      }
    }
    go.addEventListener("click", () => void submit());
    for (const input of [amount, pin]) {
      input?.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter") void submit();
      });
    }
    cancel.addEventListener("click", () => idle(undefined, true));
    body.replaceChildren(
      h(
        "div",
        { class: "scanned", "data-member": s.member_no },
        h(
          "p",
          { id: "scanned-member", class: "big" },
          `${s.name ?? ""} (${s.member_no}) · ${s.kind === "card" ? r.kindCard : r.kindDynamic}`,
        ),
        h(
          "p",
          { class: "available" },
          `${r.available}: `,
          h("strong", { id: "available" }, grouped(s.available)),
          ` ${deps.t.pointsUnit}`,
        ),
        h(
          "p",
          { class: "hint" },
          r.balanceNote(kstDateTime(s.balance_as_of)),
          " · ",
          r.expires(kstTime(s.expires_at)),
        ),
        s.offline ? h("p", { class: "hint offline-note" }, r.offline) : null,
      ),
      h("label", { for: "amount" }, r.amount),
      amount,
      h(
        "p",
        { id: "amount-limits", class: "hint" },
        r.limits(s.limits.min, s.limits.per_transaction),
      ),
      ...(pin ? [h("label", { for: "pin" }, r.pin), pin] : []),
      h("div", { class: "actions" }, go, cancel),
      status,
    );
    amount.focus();
  }

  function showReceipt(done: Redeemed): void {
    const frame = pageFrame("receipt-frame", done.receipt_html);
    const status = h("div", { id: "receipt-status" });
    const print = h("button", { type: "button", id: "print-receipt" }, r.print);
    const voidBtn = h("button", { type: "button", id: "void-hold" }, r.voidHold);
    const next = h("button", { type: "button", id: "redeem-next", class: "primary" }, r.next);
    print.addEventListener("click", async () => {
      try {
        const again = await api(invoke).holdReceipt({
          holdId: done.hold_id,
          print: true,
        });
        status.replaceChildren(
          again.printer_message
            ? messageBox("error", again.printer_message)
            : messageBox("done", r.printed),
        );
      } catch (e) {
        status.replaceChildren(errorBox(toCommandError(e)));
      }
      printFrame(frame);
    });
    let armed = false;
    voidBtn.addEventListener("click", async () => {
      if (!armed) {
        armed = true;
        voidBtn.textContent = r.voidConfirm;
        voidBtn.setAttribute("aria-pressed", "true");
        return;
      }
      voidBtn.disabled = true;
      try {
        const v = await api(invoke).voidHold({ holdId: done.hold_id });
        deps.onQueued?.();
        const result = h("p", { id: "void-result" }, r.voided(v.amount));
        status.replaceChildren(messageBox("done", result));
        voidBtn.hidden = true;
        // The button pressed is gone: the focus goes to what it did.
        focusOn(result);
      } catch (e) {
        status.replaceChildren(errorBox(toCommandError(e)));
        voidBtn.disabled = false;
      }
    });
    next.addEventListener("click", () => idle(undefined, true));
    body.replaceChildren(
      messageBox(
        "done",
        h("p", { id: "redeem-done", class: "big" }, r.done(done.amount, done.remaining)),
      ),
      ...(done.printer_message ? [messageBox("error", done.printer_message)] : []),
      h("p", {}, `${r.holdId}: `, h("strong", { id: "hold-id" }, done.hold_id)),
      // What print or void did shows above the buttons: the focus goes there, and the next
      // Tab reaches "next customer".
      status,
      h("div", { class: "actions" }, print, voidBtn, next),
      h("h3", {}, r.receipt),
      frame,
    );
    focusOn(body.querySelector<HTMLElement>("#redeem-done"));
  }

  idle();
  return { section, scan, stop: () => camera?.stop(), camera };
}

/** The day's settlement: figures, the printable report, and the CSV export. */
export function settlementPanel(deps: RedeemDeps): HTMLElement {
  const { invoke } = deps;
  const r = deps.t.redeem;
  const body = h("div", { id: "settlement-body" });
  const open = h("button", { type: "button", id: "settlement-open" }, r.showSettlement);
  const dayInput = h("input", { id: "settlement-day", type: "date" });
  async function show(): Promise<void> {
    try {
      const s = await api(invoke).daySettlement({ day: dayInput.value || null });
      dayInput.value = s.day;
      const rows = (["redemptions", "voids", "posted", "pending", "rejected"] as const).map((k) =>
        h(
          "tr",
          { "data-figure": k },
          h("th", {}, r.figures[k] ?? k),
          h("td", { class: "count" }, r.count(s[k].count)),
          h("td", { class: "points" }, r.won(s[k].points)),
        ),
      );
      const frame = pageFrame("settlement-frame", s.html);
      const exportBtn = h("button", { type: "button", id: "export-csv" }, r.exportCsv);
      const printBtn = h("button", { type: "button", id: "print-settlement" }, r.printSettlement);
      const status = h("div", { id: "settlement-status" });
      exportBtn.addEventListener("click", async () => {
        try {
          const done = await api(invoke).exportSettlement({ day: s.day });
          status.replaceChildren(
            messageBox("done", h("p", { id: "export-path" }, r.exported(done.path))),
          );
        } catch (e) {
          status.replaceChildren(errorBox(toCommandError(e)));
        }
      });
      printBtn.addEventListener("click", () => printFrame(frame));
      body.replaceChildren(
        h("p", { class: "big" }, s.day),
        h("table", { id: "settlement-figures", class: "figures" }, ...rows),
        h("div", { class: "actions" }, exportBtn, printBtn),
        status,
        frame,
      );
    } catch (e) {
      body.replaceChildren(errorBox(toCommandError(e)));
    }
  }
  open.addEventListener("click", () => void show());
  return h(
    "section",
    { id: "settlement", class: "settlement", "aria-labelledby": "settlement-heading" },
    h("h2", { id: "settlement-heading" }, r.settlementHeading),
    h("label", { for: "settlement-day" }, r.day),
    h("div", { class: "actions" }, dayInput, open),
    body,
  );
}
