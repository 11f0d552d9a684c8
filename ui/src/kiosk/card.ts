// Step 5: the card PIN, then the member card (or the sign-up receipt until the server signs
// one): on screen, on the receipt printer, or as a printable page.

import { api } from "../api";
import { h, messageBox } from "../dom";
import { toCommandError } from "../ipc";
import { inView } from "../watch";
import { actions, type Kiosk } from "./context";
import { identity } from "./identity";
import { keypad } from "./keypad";
import type { Registered } from "./types";
import { newApplicant } from "./watch-step";

/** The card PIN: chosen on the keypad, typed twice, sent to `issue_member_card`. */
function pinForm(k: Kiosk, done: Registered): HTMLElement {
  const { t, invoke, say, go } = k;
  const field = (id: string) =>
    h("input", {
      id,
      type: "password",
      inputmode: "numeric",
      autocomplete: "off",
      maxlength: "6",
      class: "pin",
    }) as HTMLInputElement;
  const pin = field("card-pin");
  const again = field("card-pin-again");
  const status = h("div", { id: "pin-status", "aria-live": "assertive" });
  const make = h("button", { type: "button", id: "make-card", class: "primary" }, t.makeCard);
  make.addEventListener("click", async () => {
    make.disabled = true;
    status.replaceChildren(h("p", { class: "working" }, t.working));
    try {
      const c = await api(invoke).issueMemberCard({
        opId: done.card.op_id,
        pin: pin.value,
        pinAgain: again.value,
      });
      done.card = c;
      go("card");
      say(t.cardMade);
    } catch (e) {
      const err = toCommandError(e);
      pin.value = "";
      again.value = "";
      pin.focus();
      status.replaceChildren(
        messageBox(
          "error",
          h("span", { id: "error-code", hidden: true }, err.code),
          h("p", { id: "pin-error" }, err.message),
        ),
      );
      say(err.message);
    } finally {
      make.disabled = false;
    }
  });
  return h(
    "section",
    { id: "pin-form", class: "kiosk" },
    h(
      "div",
      { class: "form" },
      h("h2", {}, t.pinHeading),
      h("p", { class: "hint" }, t.pinHint),
      h("label", { for: "card-pin" }, t.pin),
      pin,
      h("label", { for: "card-pin-again" }, t.pinAgain),
      again,
      actions(make),
      status,
    ),
    keypad(t, [
      { input: pin, label: t.pin },
      { input: again, label: t.pinAgain },
    ]),
  );
}

export function card(k: Kiosk): HTMLElement[] {
  const { t, invoke, st } = k;
  const done = st.done;
  if (!done) return identity(k);
  const c = done.card;
  const qr = h("div", { id: "card-qr", class: "qr", "data-content": c.qr_content });
  qr.innerHTML = c.qr_svg; // SVG made by Rust's qrcode crate from our own data
  const status = h("div", { id: "print-status", "aria-live": "polite" });
  const page = h("iframe", { id: "card-page", title: t.printPage, hidden: true });
  const printNow = h("button", { type: "button", id: "print-now", hidden: true }, t.printNow);
  printNow.addEventListener("click", () => {
    try {
      page.contentWindow?.print();
    } catch {
      // No print dialog here: the page stays on screen for the clerk.
    }
  });
  const printPage = h("button", { type: "button", id: "print-page" }, t.printPage);
  printPage.addEventListener("click", () => {
    page.setAttribute("srcdoc", c.page_html);
    page.hidden = false;
    printNow.hidden = false;
    inView(page);
  });
  const buttons: HTMLElement[] = [];
  if (c.printer) {
    const print = h("button", { type: "button", id: "print-card", class: "primary" }, t.printCard);
    print.addEventListener("click", async () => {
      print.disabled = true;
      try {
        await api(invoke).printCard({ opId: c.op_id });
        status.replaceChildren(messageBox("done", h("p", { id: "printed" }, t.printed)));
      } catch (e) {
        status.replaceChildren(
          messageBox(
            "error",
            h("span", { id: "error-code", hidden: true }, toCommandError(e).code),
            toCommandError(e).message,
          ),
        );
      } finally {
        print.disabled = false;
      }
    });
    buttons.push(print);
  }
  buttons.push(printPage, printNow, newApplicant(k));
  return [
    ...(c.signed ? [] : [pinForm(k, done)]),
    h("h2", {}, c.signed ? t.cardHeading : t.receiptHeading),
    h(
      "div",
      { id: "card", class: "member-card", "data-signed": String(c.signed) },
      qr,
      h(
        "div",
        { class: "card-text" },
        h("p", { id: "card-title", class: "big-line" }, c.signed ? t.cardTitle : t.receiptTitle),
        h(
          "p",
          { id: "card-number", class: "big-line" },
          c.member_no ? t.memberNo2(c.member_no) : t.memberNoPending,
        ),
        h("p", { id: "card-receipt" }, `${t.receiptNo} ${c.receipt_no}`),
        h("p", { id: "card-name" }, c.masked_name),
        h("p", { id: "card-note", class: "hint" }, c.signed ? t.cardHint : t.receiptNote),
      ),
    ),
    actions(...buttons),
    status,
    page,
  ];
}
