// What the kiosk's screens hold and what its commands answer.

import type { CardView } from "../bindings/CardView";
import type { ConsentView } from "../bindings/ConsentView";
import type { KioskSetup } from "../bindings/KioskSetup";
import type { PairedWatch } from "../bindings/PairedWatch";
import type { Registered } from "../bindings/Registered";
import type { Residency } from "../bindings/Residency";
import type { Labels } from "../i18n";
import type { Invoke } from "../ipc";

export type { CardView, ConsentView, KioskSetup, PairedWatch, Registered, Residency };

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
export interface Applicant {
  name: string;
  birth: string;
  phone: string;
  residency: Residency;
  guardian: string;
  answers: Map<string, boolean>;
}

export interface KioskState {
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

export function fresh(): Applicant {
  return { name: "", birth: "", phone: "", residency: "lives", guardian: "", answers: new Map() };
}
