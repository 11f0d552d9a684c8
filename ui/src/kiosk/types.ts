// What the kiosk's screens hold and what its commands answer.

import type { Labels } from "../i18n";
import type { ConfirmedEnrollment, Invoke } from "../ipc";
import type { WatchWarning } from "../watch";

/** What `pair_watch` answers. */
export interface PairedWatch {
  serial: string;
  warnings: WatchWarning[];
}

export type Residency = "lives" | "works" | "studies" | "outside";

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
