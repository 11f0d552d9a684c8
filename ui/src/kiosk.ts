// The sign-up kiosk, one step a screen: identity and eligibility, consent, contact, the watch,
// the member card. Every rule is in Rust; this file shows, collects and speaks.
// Barrier-free: a number pad for the numbers, spoken guidance per step with volume and speed,
// an inactivity question well before anything is cleared, sizes in em (zoom to 200%).

import { focusOn, h, messageBox } from "./dom";
import { receiptNo } from "./format";
import type { Labels } from "./i18n";
import { type ConfirmedEnrollment, type Invoke, toCommandError } from "./ipc";
import { inView, type WatchWarning, warningLines, watchPicker } from "./watch";

/** What `pair_watch` answers. */
export interface PairedWatch {
  serial: string;
  warnings: WatchWarning[];
}

type Residency = "lives" | "works" | "studies" | "outside";

export interface ConsentView {
  id: string;
  version: string;
  required: boolean;
  title: string;
}

export interface KioskSetup {
  consents: ConsentView[];
  warn_after_s: number;
  clear_after_s: number;
  printer: boolean;
  admission: { schedule: boolean; places: number | null; remaining: number | null };
}

export interface CardView {
  op_id: string;
  /** `true`: the member card the server signed; `false`: the sign-up receipt until then. */
  signed: boolean;
  qr_content: string;
  qr_svg: string;
  page_html: string;
  receipt_no: string;
  masked_name: string;
  member_no: string | null;
  issued: string;
  printer: boolean;
}

export interface Registered {
  enrollment: ConfirmedEnrollment;
  place: number | null;
  admitted_by: "lease" | "no_schedule";
  card: CardView;
}

export interface KioskDeps {
  invoke: Invoke;
  t: Labels;
  /** Called after something was queued, so the header's count can refresh. */
  onQueued: () => void;
}

export const STEPS = ["identity", "consent", "contact", "watch", "card"] as const;
export type Step = (typeof STEPS)[number];

/** Spoken volume steps (espeak-ng's amplitude, 0 = off) and speeds (words a minute). */
export const VOLUMES = [0, 50, 100, 150, 200] as const;
export const SPEEDS = [100, 120, 140, 160, 180, 200] as const;

/** What one applicant has given so far; kept across a language switch, cleared when done. */
interface Applicant {
  name: string;
  birth: string;
  phone: string;
  residency: Residency;
  guardian: string;
  answers: Map<string, boolean>;
}

interface KioskState {
  step: Step;
  a: Applicant;
  done: Registered | null;
  volume: number;
  speed: number;
  warnTimer?: ReturnType<typeof setTimeout>;
  clearTimer?: ReturnType<typeof setTimeout>;
  /** The current render's hooks for the document-wide listeners (registered once). */
  onActivity?: () => void;
}

function fresh(): Applicant {
  return { name: "", birth: "", phone: "", residency: "lives", guardian: "", answers: new Map() };
}

const states = new WeakMap<HTMLElement, KioskState>();

function stateOf(root: HTMLElement): KioskState {
  let s = states.get(root);
  if (!s) {
    s = { step: "identity", a: fresh(), done: null, volume: 100, speed: 140 };
    states.set(root, s);
    const st = s;
    for (const ev of ["pointerdown", "keydown", "input"]) {
      root.ownerDocument.addEventListener(ev, () => st.onActivity?.());
    }
  }
  return s;
}

/** A number pad that types into whichever numeric field was last chosen. */
function keypad(t: Labels, fields: { input: HTMLInputElement; label: string }[]): HTMLElement {
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

export function renderKiosk(root: HTMLElement, deps: KioskDeps): void {
  const { t, invoke } = deps;
  const st = stateOf(root);
  let setup: KioskSetup | null = null;

  const body = h("div", { id: "step-body" });
  const result = h("div", { id: "result", "aria-live": "assertive" });
  const list = h("ul", { id: "today-list", class: "list" });
  const stepsBar = h("ol", { id: "steps", class: "kiosk-steps" });
  // A real modal dialog: named by its question, the rest of the page inert while it shows,
  // and Escape answers "continue" (nothing is cleared).
  const dialog = h("dialog", {
    id: "idle-dialog",
    class: "dialog",
    role: "alertdialog",
    "aria-modal": "true",
    "aria-labelledby": "idle-question",
    "aria-describedby": "idle-hint",
    hidden: true,
  });
  function openDialog(): void {
    dialog.hidden = false;
    if (typeof dialog.showModal === "function" && !dialog.open) {
      try {
        dialog.showModal();
      } catch {
        dialog.setAttribute("open", "");
      }
    } else dialog.setAttribute("open", "");
  }
  function closeDialog(): void {
    if (typeof dialog.close === "function" && dialog.open) dialog.close();
    dialog.removeAttribute("open");
    dialog.hidden = true;
  }

  // ---- spoken guidance ----------------------------------------------------------------
  let lastSaid = "";
  function say(text: string): void {
    lastSaid = text;
    invoke("speak", { text, volume: st.volume, speed: st.speed }).catch(() => undefined);
  }
  const volumeShown = h("span", { id: "volume", class: "setting" });
  const speedShown = h("span", { id: "speed", class: "setting" });
  function showSpeech(): void {
    volumeShown.textContent = t.volume(st.volume);
    volumeShown.dataset.volume = String(st.volume);
    speedShown.textContent = t.speedIs(st.speed);
    speedShown.dataset.speed = String(st.speed);
  }
  function stepper<T extends number>(steps: readonly T[], get: () => number, set: (v: T) => void) {
    return (dir: 1 | -1) => {
      const i = steps.indexOf(get() as T);
      const next = steps[Math.min(steps.length - 1, Math.max(0, i + dir))];
      if (next !== undefined) set(next);
      showSpeech();
      say(lastSaid);
    };
  }
  const vol = stepper(
    VOLUMES,
    () => st.volume,
    (v) => (st.volume = v),
  );
  const spd = stepper(
    SPEEDS,
    () => st.speed,
    (v) => (st.speed = v),
  );
  const btn = (id: string, label: string, on: () => void, cls?: string) => {
    const b = h("button", { type: "button", id, class: cls }, label);
    b.addEventListener("click", on);
    return b;
  };
  const speech = h(
    "div",
    { id: "speech", class: "speech", role: "group", "aria-label": t.speech },
    h("span", { class: "setting-name" }, t.speech),
    btn("volume-down", t.quieter, () => vol(-1)),
    volumeShown,
    btn("volume-up", t.louder, () => vol(1)),
    btn("speed-down", t.slower, () => spd(-1)),
    speedShown,
    btn("speed-up", t.faster, () => spd(1)),
    btn("replay", t.replay, () => say(lastSaid)),
  );
  showSpeech();

  // ---- inactivity ---------------------------------------------------------------------
  function stopTimers(): void {
    clearTimeout(st.warnTimer);
    clearTimeout(st.clearTimer);
  }
  function armIdle(): void {
    stopTimers();
    if (!setup || !dialog.hidden) return;
    const untouched = st.step === "identity" && !st.a.name && !st.a.birth && !st.a.phone;
    if (untouched) return; // nothing typed, nothing to clear
    const s = setup;
    st.warnTimer = setTimeout(() => {
      openDialog();
      dialog.querySelector<HTMLButtonElement>("#idle-continue")?.focus();
      say(`${t.idleQuestion} ${t.idleHint(s.clear_after_s)}`);
      st.clearTimer = setTimeout(startOver, s.clear_after_s * 1000);
    }, s.warn_after_s * 1000);
  }
  st.onActivity = () => {
    if (dialog.hidden) armIdle();
  };
  function startOver(): void {
    stopTimers();
    closeDialog();
    st.a = fresh();
    st.done = null;
    go("identity");
  }

  // ---- the day's list -----------------------------------------------------------------
  async function refreshList(): Promise<void> {
    try {
      const rows = await invoke<ConfirmedEnrollment[]>("kiosk_today");
      list.replaceChildren(
        ...(rows.length === 0
          ? [h("li", {}, t.noneToday)]
          : rows.map((r) =>
              h(
                "li",
                { "data-op": r.op_id },
                `${receiptNo(r.local_no)} · ${r.name} · ${t.age(r.age)}`,
              ),
            )),
      );
    } catch (e) {
      list.replaceChildren(h("li", {}, toCommandError(e).message));
    }
  }

  function showError(e: unknown, extra?: HTMLElement): void {
    const err = toCommandError(e);
    result.replaceChildren(
      messageBox(
        "error",
        h("span", { id: "error-code", hidden: true }, err.code),
        h("span", { id: "error-message" }, err.message),
      ),
      ...(extra ? [extra] : []),
    );
    say(err.message);
    inView(result);
  }

  function applicantArgs() {
    return {
      name: st.a.name,
      birth_date: st.a.birth,
      phone: st.a.phone,
      residency: st.a.residency,
    };
  }

  function actions(...buttons: HTMLElement[]): HTMLElement {
    return h("div", { class: "actions" }, ...buttons);
  }

  // ---- step 1: identity ---------------------------------------------------------------
  function identity(): HTMLElement[] {
    const name = h("input", { id: "name", autocomplete: "off", value: st.a.name });
    const birth = h("input", {
      id: "birth-date",
      inputmode: "numeric",
      maxlength: "10",
      autocomplete: "off",
    });
    const phone = h("input", {
      id: "phone",
      inputmode: "numeric",
      maxlength: "13",
      autocomplete: "off",
    });
    name.value = st.a.name;
    birth.value = st.a.birth;
    phone.value = st.a.phone;
    name.addEventListener("input", () => (st.a.name = name.value));
    birth.addEventListener("input", () => (st.a.birth = birth.value));
    phone.addEventListener("input", () => (st.a.phone = phone.value));
    const proof = h("p", { id: "proof-hint", class: "hint strong" }, t.proofHint);
    proof.hidden = st.a.residency !== "works" && st.a.residency !== "studies";
    const choices = (["lives", "works", "studies", "outside"] as const).map((r) => {
      const b = h(
        "button",
        { type: "button", id: `residency-${r}`, "aria-pressed": String(r === st.a.residency) },
        t[r],
      );
      b.addEventListener("click", () => {
        st.a.residency = r;
        for (const other of choices) other.setAttribute("aria-pressed", String(other === b));
        proof.hidden = r !== "works" && r !== "studies";
      });
      return b;
    });
    const next = h("button", { type: "button", id: "next-identity", class: "primary" }, t.next);
    next.addEventListener("click", async () => {
      next.disabled = true;
      result.replaceChildren(h("p", { class: "working" }, t.working));
      try {
        await invoke("check_identity", { applicant: applicantArgs() });
        result.replaceChildren();
        go("consent");
      } catch (e) {
        const code = toCommandError(e).code;
        const ticket =
          code === "not_today" || code === "quota_used_up" ? ticketButton() : undefined;
        showError(e, ticket);
      } finally {
        next.disabled = false;
      }
    });
    const clear = h("button", { type: "button", id: "clear" }, t.clear);
    clear.addEventListener("click", () => {
      startOver();
      document.getElementById("name")?.focus();
    });
    const pad = keypad(t, [
      { input: birth, label: t.birthDate },
      { input: phone, label: t.phone },
    ]);
    return [
      h(
        "div",
        { class: "kiosk" },
        h(
          "section",
          { class: "form" },
          h("label", { for: "name" }, t.name),
          name,
          h("label", { for: "birth-date" }, t.birthDate),
          birth,
          h("label", { for: "phone" }, t.phone),
          phone,
          h(
            "fieldset",
            { class: "choices-group" },
            h("legend", {}, t.residency),
            h("div", { class: "choices" }, ...choices),
          ),
          proof,
          actions(next, clear),
          result,
        ),
        h("div", {}, pad, h("h2", {}, t.todayList), list),
      ),
    ];
  }

  function ticketButton(): HTMLElement {
    const b = h("button", { type: "button", id: "ticket" }, t.ticket);
    const area = h("div", { class: "actions" }, b);
    b.addEventListener("click", async () => {
      b.disabled = true;
      try {
        const ticket = await invoke<{ number: number; day: string; message: string }>(
          "issue_ticket",
          { applicant: applicantArgs() },
        );
        area.replaceChildren(
          messageBox(
            "done",
            h("p", { id: "ticket-no", class: "big-line", "data-day": ticket.day }, ticket.message),
          ),
        );
        say(ticket.message);
      } catch (e) {
        showError(e);
      }
    });
    return area;
  }

  // ---- step 2: consent ----------------------------------------------------------------
  function consent(): HTMLElement[] {
    const items = setup?.consents ?? [];
    const rows = items.map((item) => {
      // Named with their item, so that "agree" is never heard without what it agrees to.
      const yes = h(
        "button",
        { type: "button", id: `consent-${item.id}-yes`, "aria-label": `${t.agree}: ${item.title}` },
        t.agree,
      );
      const no = h(
        "button",
        {
          type: "button",
          id: `consent-${item.id}-no`,
          "aria-label": `${t.disagree}: ${item.title}`,
        },
        t.disagree,
      );
      const show = () => {
        const v = st.a.answers.get(item.id);
        yes.setAttribute("aria-pressed", String(v === true));
        no.setAttribute("aria-pressed", String(v === false));
      };
      yes.addEventListener("click", () => {
        st.a.answers.set(item.id, true);
        show();
      });
      no.addEventListener("click", () => {
        st.a.answers.set(item.id, false);
        show();
      });
      show();
      return h(
        "div",
        {
          class: "consent",
          role: "group",
          "aria-labelledby": `consent-${item.id}-title`,
          "data-id": item.id,
          "data-version": item.version,
        },
        h(
          "p",
          { class: "consent-title", id: `consent-${item.id}-title` },
          h(
            "span",
            { class: item.required ? "tag required" : "tag" },
            item.required ? t.required : t.optional,
          ),
          " ",
          item.title,
        ),
        h("div", { class: "choices" }, yes, no),
      );
    });
    const all = h("button", { type: "button", id: "agree-all" }, t.agreeAll);
    all.addEventListener("click", () => {
      for (const item of items) st.a.answers.set(item.id, true);
      // Everything agreed: on to "next", the only thing left to do here.
      go("consent", "next-consent");
    });
    const back = h("button", { type: "button", id: "back" }, t.back);
    back.addEventListener("click", () => go("identity"));
    const next = h("button", { type: "button", id: "next-consent", class: "primary" }, t.next);
    next.addEventListener("click", async () => {
      try {
        await invoke("check_consent", { consents: consentArgs() });
        result.replaceChildren();
        go("contact");
      } catch (e) {
        showError(e);
      }
    });
    return [all, ...rows, actions(back, next), result];
  }

  function consentArgs() {
    return (setup?.consents ?? [])
      .filter((i) => st.a.answers.has(i.id))
      .map((i) => ({ id: i.id, version: i.version, agreed: st.a.answers.get(i.id) === true }));
  }

  // ---- step 3: contact, then registration ---------------------------------------------
  function contact(): HTMLElement[] {
    const guardian = h("input", {
      id: "guardian-phone",
      inputmode: "numeric",
      maxlength: "13",
      autocomplete: "off",
    });
    guardian.value = st.a.guardian;
    guardian.addEventListener("input", () => (st.a.guardian = guardian.value));
    const back = h("button", { type: "button", id: "back" }, t.back);
    back.addEventListener("click", () => go("consent"));
    const submit = h("button", { type: "button", id: "enroll", class: "primary" }, t.enroll);
    submit.addEventListener("click", async () => {
      submit.disabled = true;
      result.replaceChildren(h("p", { class: "working" }, t.working));
      try {
        st.done = await invoke<Registered>("register", {
          applicant: applicantArgs(),
          consents: consentArgs(),
          contact: { guardian_phone: st.a.guardian },
        });
        result.replaceChildren();
        deps.onQueued();
        go("watch");
      } catch (e) {
        showError(e);
      } finally {
        submit.disabled = false;
      }
    });
    return [
      h(
        "div",
        { class: "kiosk" },
        h(
          "section",
          { class: "form" },
          h("p", { id: "contact-phone", class: "big-line" }, t.contactPhone(st.a.phone)),
          h("label", { for: "guardian-phone" }, t.guardianPhone),
          guardian,
          actions(back, submit),
          result,
        ),
        keypad(t, [{ input: guardian, label: t.guardianPhone }]),
      ),
    ];
  }

  // ---- step 4: confirmed, the watch ---------------------------------------------------
  function watch(): HTMLElement[] {
    const done = st.done;
    if (!done) return identity();
    const e = done.enrollment;
    const area = h("div", { id: "pair-area" });
    const start = h("button", { type: "button", id: "pair-start", class: "primary" }, t.pairWatch);
    const picker = watchPicker({
      invoke,
      t,
      onPick: async (w) => {
        const paired = await invoke<PairedWatch>("pair_watch", {
          opId: e.op_id,
          address: w.address,
        });
        picker.status.replaceChildren(
          messageBox(
            "done",
            h("p", { id: "paired", class: "big" }, t.paired(paired.serial, st.a.name || e.name)),
            h("p", {}, t.pairedSent),
            ...warningLines(paired.warnings),
          ),
        );
        say(t.paired(paired.serial, st.a.name || e.name));
      },
    });
    picker.section.hidden = true;
    start.addEventListener("click", () => {
      start.hidden = true;
      picker.section.hidden = false;
      picker.scan.click();
    });
    const toCard = h("button", { type: "button", id: "to-card", class: "primary" }, t.toCard);
    toCard.addEventListener("click", () => go("card"));
    area.append(h("div", { class: "actions" }, start), picker.section);
    return [
      messageBox(
        "done",
        h("div", { class: "big", id: "enrolled" }, t.enrolled),
        h("div", { id: "receipt-no" }, `${t.receiptNo} ${receiptNo(e.local_no)}`),
        h("div", { id: "enrolled-who" }, `${e.name} · ${t.age(e.age)}`),
        h(
          "div",
          { id: "admitted", "data-by": done.admitted_by },
          done.place !== null ? t.admittedLease(done.place) : t.admittedNoSchedule,
        ),
      ),
      area,
      actions(toCard, newApplicant()),
      h("h2", {}, t.todayList),
      list,
    ];
  }

  function newApplicant(): HTMLElement {
    const b = h("button", { type: "button", id: "new-applicant" }, t.newApplicant);
    b.addEventListener("click", startOver);
    return b;
  }

  // ---- step 5: the member card --------------------------------------------------------
  /** The card PIN: chosen on the keypad, typed twice, sent to `issue_member_card`. */
  function pinForm(done: Registered): HTMLElement {
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
        const c = await invoke<CardView>("issue_member_card", {
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

  function card(): HTMLElement[] {
    const done = st.done;
    if (!done) return identity();
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
      const print = h(
        "button",
        { type: "button", id: "print-card", class: "primary" },
        t.printCard,
      );
      print.addEventListener("click", async () => {
        print.disabled = true;
        try {
          await invoke("print_card", { opId: c.op_id });
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
    buttons.push(printPage, printNow, newApplicant());
    return [
      ...(c.signed ? [] : [pinForm(done)]),
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

  // ---- moving between steps -----------------------------------------------------------
  const sayings: Record<Step, string> = {
    identity: t.sayIdentity,
    consent: t.sayConsent,
    contact: t.sayContact,
    watch: t.sayWatch,
    card: t.sayCard,
  };
  /** What is said on the card step: the PIN first, until the server has signed a card. */
  const sayingFor = (step: Step): string =>
    step === "card" && st.done && !st.done.card.signed ? t.sayPin : sayings[step];

  /** Shows `step`. Unless `focus` is false (the first screen, before anyone touched it),
   * the keyboard's focus moves to the new screen's heading, which is read out, or to the
   * element with the id `focus`. */
  function go(step: Step, focus: boolean | string = true): void {
    st.step = step;
    const n = STEPS.indexOf(step);
    stepsBar.replaceChildren(
      ...STEPS.map((s, i) =>
        h(
          "li",
          {
            "data-step": s,
            "aria-current": i === n ? "step" : undefined,
            class: i < n ? "past" : "",
          },
          t.stepNames[i] ?? s,
        ),
      ),
    );
    stepsBar.setAttribute("aria-label", t.stepOf(n + 1, STEPS.length));
    const screens: Record<Step, () => HTMLElement[]> = { identity, consent, contact, watch, card };
    body.dataset.step = step;
    const heading = h(
      "h2",
      { id: "step-heading", class: "step-heading", tabindex: "-1" },
      `${t.stepOf(n + 1, STEPS.length)}: ${t.stepNames[n] ?? step}`,
    );
    body.replaceChildren(heading, ...screens[step]());
    if (focus !== false) {
      focusOn(typeof focus === "string" ? document.getElementById(focus) : heading);
    }
    if (step === "identity" || step === "watch") void refreshList();
    say(sayingFor(step));
    armIdle();
  }

  const cont = h(
    "button",
    { type: "button", id: "idle-continue", class: "primary" },
    t.idleContinue,
  );
  function carryOn(): void {
    stopTimers();
    closeDialog();
    armIdle();
  }
  cont.addEventListener("click", carryOn);
  dialog.addEventListener("cancel", (ev) => {
    ev.preventDefault();
    carryOn();
  });
  dialog.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      ev.preventDefault();
      carryOn();
    }
  });
  const restart = h("button", { type: "button", id: "idle-restart" }, t.idleRestart);
  restart.addEventListener("click", startOver);

  root.replaceChildren(h("h1", {}, t.kioskHeading), stepsBar, speech, body, dialog);

  void (async () => {
    try {
      setup = await invoke<KioskSetup>("kiosk_setup");
    } catch (e) {
      showError(e);
    }
    dialog.replaceChildren(
      h(
        "div",
        { class: "dialog-box" },
        h("p", { id: "idle-question", class: "big" }, t.idleQuestion),
        h("p", { id: "idle-hint" }, t.idleHint(setup?.clear_after_s ?? 120)),
        h("div", { class: "actions" }, cont, restart),
      ),
    );
    // The first screen needs no setup; re-render only a step that does, so that nothing
    // being typed into is replaced.
    if (st.step === "identity") armIdle();
    else go(st.step, false);
  })();
  // Rendered at once, before the setup arrives, so the first screen is never empty.
  go(st.step, false);
}
