// The sign-up kiosk, one step a screen: identity and eligibility, consent, contact, the watch,
// the member card, each in a module of its own under `kiosk/`. Every rule is in Rust; this
// file moves between the steps, speaks, and asks before clearing.
// Barrier-free: a number pad for the numbers, spoken guidance per step with volume and speed,
// an inactivity question well before anything is cleared, sizes in em (zoom to 200%).

import { api } from "./api";
import { focusOn, h, messageBox } from "./dom";
import { receiptNo } from "./format";
import { toCommandError } from "./ipc";
import { card } from "./kiosk/card";
import { consent } from "./kiosk/consent";
import { contact } from "./kiosk/contact";
import type { Kiosk } from "./kiosk/context";
import { identity } from "./kiosk/identity";
import { renderReplacement } from "./kiosk/replace";
import {
  fresh,
  type KioskDeps,
  type KioskSetup,
  type KioskState,
  SPEEDS,
  STEPS,
  type Step,
  VOLUMES,
} from "./kiosk/types";
import { watchStep } from "./kiosk/watch-step";
import { inView } from "./watch";

export * from "./kiosk/types";

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
    api(invoke)
      .speak({ text, volume: st.volume, speed: st.speed })
      .catch(() => undefined);
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
      const rows = await api(invoke).kioskToday();
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

  const k: Kiosk = {
    t,
    invoke,
    st,
    setup: () => setup,
    result,
    list,
    say,
    showError,
    go,
    startOver,
    replaceCard,
    onQueued: deps.onQueued,
  };

  /** "Replace a lost card": its own screen; "start over" comes back to a fresh sign-up. */
  function replaceCard(): void {
    stopTimers();
    renderReplacement(root, {
      t,
      invoke,
      say,
      idleMs: ((setup?.warn_after_s ?? 90) + (setup?.clear_after_s ?? 120)) * 1000,
      onBack: () => {
        st.a = fresh();
        st.done = null;
        st.step = "identity";
        renderKiosk(root, deps);
      },
    });
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
    const screens: Record<Step, (k: Kiosk) => HTMLElement[]> = {
      identity,
      consent,
      contact,
      watch: watchStep,
      card,
    };
    body.dataset.step = step;
    const heading = h(
      "h2",
      { id: "step-heading", class: "step-heading", tabindex: "-1" },
      `${t.stepOf(n + 1, STEPS.length)}: ${t.stepNames[n] ?? step}`,
    );
    body.replaceChildren(heading, ...screens[step](k));
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
      setup = await api(invoke).kioskSetup();
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
