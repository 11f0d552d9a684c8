// What every step of the kiosk is given: the labels, the commands, the applicant so far, and
// the ways to speak, show an error and move to another step.

import { h } from "../dom";
import type { Labels } from "../i18n";
import type { Invoke } from "../ipc";
import type { KioskSetup, KioskState, Step } from "./types";

export interface Kiosk {
  t: Labels;
  invoke: Invoke;
  st: KioskState;
  /** What `kiosk_setup` answered; null until it has. */
  setup: () => KioskSetup | null;
  /** Where a step's outcome or refusal shows (an assertive live region). */
  result: HTMLElement;
  /** Today's sign-ups at this kiosk. */
  list: HTMLElement;
  say: (text: string) => void;
  showError: (e: unknown, extra?: HTMLElement) => void;
  go: (step: Step, focus?: boolean | string) => void;
  startOver: () => void;
  /** Opens "replace a lost card" instead of the sign-up. */
  replaceCard: () => void;
  /** Called after something was queued, so the header's count can refresh. */
  onQueued: () => void;
}

export function actions(...buttons: HTMLElement[]): HTMLElement {
  return h("div", { class: "actions" }, ...buttons);
}

/** The applicant as `check_identity`, `register` and `issue_ticket` take it. */
export function applicantArgs(st: KioskState) {
  return {
    name: st.a.name,
    birth_date: st.a.birth,
    phone: st.a.phone,
    residency: st.a.residency,
  };
}
