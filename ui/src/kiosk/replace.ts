// "Replace a lost card" at the kiosk: the member gives name, birth date and phone (number pad),
// the kiosk finds them on the server (`find_card_replacement`: the card number allowed), the
// member picks a 6-digit PIN twice, and the server signs the new card (`replace_lost_card`),
// shown and printed as a first card. Every rule and refusal is Rust's; this screen shows them.

import { api } from "../api";
import type { CardView } from "../bindings/CardView";
import type { ReplacementAllowed } from "../bindings/ReplacementAllowed";
import { focusOn, h, messageBox } from "../dom";
import type { Labels } from "../i18n";
import { type Invoke, toCommandError } from "../ipc";
import { actions } from "./context";
import { keypad } from "./keypad";

export const replaceKo = {
  start: "카드 재발급",
  heading: "잃어버린 카드 재발급",
  hint: "주민센터 창구나 콜센터에 분실을 신고한 뒤에 새 카드를 받을 수 있습니다. 가입할 때와 같이 이름, 생년월일, 휴대전화 번호를 입력해 주세요.",
  find: "회원 찾기",
  back: "처음으로",
  found: (a: ReplacementAllowed) => `${a.masked_name} 님 (${a.member_no}): 새 카드 ${a.serial}번`,
  make: "새 카드 만들기",
  made: "새 회원 카드가 나왔습니다. 잃어버린 카드는 이제 쓸 수 없습니다.",
  printed: "영수증 프린터로 보냈습니다.",
};

export type ReplaceLabels = typeof replaceKo;

export const replaceEn: ReplaceLabels = {
  start: "Replace a lost card",
  heading: "Replace a lost card",
  hint: "A new card is given once the loss is reported at the community-center desk or to the call center. Enter your name, birth date and phone number as at sign-up.",
  find: "Find me",
  back: "Start over",
  found: (a) => `${a.masked_name} (${a.member_no}): new card no. ${a.serial}`,
  make: "Make the new card",
  made: "Your new member card is ready. The lost card no longer works.",
  printed: "Sent to the receipt printer.",
};

export interface ReplaceDeps {
  t: Labels;
  invoke: Invoke;
  say: (text: string) => void;
  /** Back to the kiosk's first screen. */
  onBack: () => void;
  /** Without a touch for this long, what was typed is cleared and the first screen shows. */
  idleMs: number;
}

/** Shows the replacement flow in `root`. */
export function renderReplacement(root: HTMLElement, deps: ReplaceDeps): void {
  const { t, invoke, say } = deps;
  const r = t.replace;
  const heading = h("h1", { id: "replace-heading", tabindex: "-1" }, r.heading);
  const body = h("div", { id: "replace-body" });
  const result = h("div", { id: "replace-result", "aria-live": "assertive" });
  let idle: ReturnType<typeof setTimeout> | undefined;
  const leave = () => {
    clearTimeout(idle);
    for (const ev of ["pointerdown", "keydown", "input"]) root.removeEventListener(ev, touched);
    deps.onBack();
  };
  function touched(): void {
    clearTimeout(idle);
    idle = setTimeout(leave, deps.idleMs);
  }
  for (const ev of ["pointerdown", "keydown", "input"]) root.addEventListener(ev, touched);
  touched();
  const back = h("button", { type: "button", id: "replace-back" }, r.back);
  back.addEventListener("click", leave);
  const applicant = { name: "", birth_date: "", phone: "", residency: "lives" as const };

  function refused(e: unknown): void {
    const err = toCommandError(e);
    result.replaceChildren(
      messageBox(
        "error",
        h("span", { id: "error-code", hidden: true }, err.code),
        h("span", { id: "error-message" }, err.message),
      ),
    );
    say(err.message);
    focusOn(result.querySelector<HTMLElement>(".message"));
  }

  function find(): void {
    body.dataset.stage = "find";
    const name = h("input", { id: "replace-name", autocomplete: "off" });
    const birth = h("input", {
      id: "replace-birth",
      inputmode: "numeric",
      maxlength: "10",
      autocomplete: "off",
    });
    const phone = h("input", {
      id: "replace-phone",
      inputmode: "numeric",
      maxlength: "13",
      autocomplete: "off",
    });
    name.value = applicant.name;
    birth.value = applicant.birth_date;
    phone.value = applicant.phone;
    const go = h("button", { type: "button", id: "replace-find", class: "primary" }, r.find);
    go.addEventListener("click", async () => {
      applicant.name = name.value;
      applicant.birth_date = birth.value;
      applicant.phone = phone.value;
      go.disabled = true;
      result.replaceChildren(h("p", { class: "working" }, t.working));
      try {
        const allowed = await api(invoke).findCardReplacement({ applicant });
        result.replaceChildren();
        pin(allowed);
      } catch (e) {
        refused(e);
      } finally {
        go.disabled = false;
      }
    });
    body.replaceChildren(
      h(
        "div",
        { class: "kiosk" },
        h(
          "section",
          { class: "form" },
          h("p", { class: "hint" }, r.hint),
          h("label", { for: "replace-name" }, t.name),
          name,
          h("label", { for: "replace-birth" }, t.birthDate),
          birth,
          h("label", { for: "replace-phone" }, t.phone),
          phone,
          actions(go, back),
        ),
        keypad(t, [
          { input: birth, label: t.birthDate },
          { input: phone, label: t.phone },
        ]),
      ),
    );
    say(r.hint);
  }

  function pin(allowed: ReplacementAllowed): void {
    body.dataset.stage = "pin";
    const field = (id: string) =>
      h("input", {
        id,
        type: "password",
        inputmode: "numeric",
        autocomplete: "off",
        maxlength: "6",
        class: "pin",
      }) as HTMLInputElement;
    const first = field("card-pin");
    const again = field("card-pin-again");
    const make = h("button", { type: "button", id: "replace-make", class: "primary" }, r.make);
    make.addEventListener("click", async () => {
      make.disabled = true;
      result.replaceChildren(h("p", { class: "working" }, t.working));
      try {
        const c = await api(invoke).replaceLostCard({
          applicant,
          pin: first.value,
          pinAgain: again.value,
        });
        result.replaceChildren();
        card(c);
      } catch (e) {
        first.value = "";
        again.value = "";
        refused(e);
      } finally {
        make.disabled = false;
      }
    });
    const found = h("p", { id: "replace-found", class: "big-line" }, r.found(allowed));
    body.replaceChildren(
      h(
        "div",
        { class: "kiosk" },
        h(
          "section",
          { class: "form" },
          found,
          h("h2", {}, t.pinHeading),
          h("p", { class: "hint" }, t.pinHint),
          h("label", { for: "card-pin" }, t.pin),
          first,
          h("label", { for: "card-pin-again" }, t.pinAgain),
          again,
          actions(make, back),
        ),
        keypad(t, [
          { input: first, label: t.pin },
          { input: again, label: t.pinAgain },
        ]),
      ),
    );
    focusOn(found);
    say(t.sayPin);
  }

  function card(c: CardView): void {
    body.dataset.stage = "card";
    const qr = h("div", { id: "card-qr", class: "qr", "data-content": c.qr_content });
    qr.innerHTML = c.qr_svg; // SVG made by Rust's qrcode crate from the server's token
    const status = h("div", { id: "print-status", "aria-live": "polite" });
    const buttons: HTMLElement[] = [];
    if (c.printer) {
      const print = h(
        "button",
        { type: "button", id: "print-card", class: "primary" },
        t.printCard,
      );
      print.addEventListener("click", async () => {
        print.disabled = true;
        try {
          await api(invoke).printReplacementCard({ memberNo: c.member_no ?? c.op_id });
          status.replaceChildren(messageBox("done", h("p", { id: "printed" }, r.printed)));
        } catch (e) {
          const err = toCommandError(e);
          status.replaceChildren(
            messageBox(
              "error",
              h("span", { id: "error-code", hidden: true }, err.code),
              err.message,
            ),
          );
        } finally {
          print.disabled = false;
        }
      });
      buttons.push(print);
    }
    buttons.push(back);
    const made = messageBox("done", h("p", { id: "replace-made" }, r.made));
    body.replaceChildren(
      made,
      h(
        "div",
        { id: "card", class: "member-card", "data-signed": "true" },
        qr,
        h(
          "div",
          { class: "card-text" },
          h("p", { id: "card-title", class: "big-line" }, t.cardTitle),
          h("p", { id: "card-number", class: "big-line" }, t.memberNo2(c.member_no ?? "")),
          h("p", { id: "card-name" }, c.masked_name),
          h("p", { id: "card-note", class: "hint" }, t.cardHint),
        ),
      ),
      actions(...buttons),
      status,
    );
    focusOn(made);
    say(r.made);
  }

  root.replaceChildren(heading, body, result);
  find();
  focusOn(heading);
}
