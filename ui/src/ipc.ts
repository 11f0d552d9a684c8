// The typed edge of the Rust commands. Errors arrive as { code, message }; switch on code.

export type Invoke = <T>(cmd: string, args?: Record<string, unknown>) => Promise<T>;

export interface CommandError {
  code: string;
  message: string;
}

export function isCommandError(e: unknown): e is CommandError {
  return (
    typeof e === "object" &&
    e !== null &&
    typeof (e as { code?: unknown }).code === "string" &&
    typeof (e as { message?: unknown }).message === "string"
  );
}

/** Turns anything a command threw into a CommandError the screen can show. */
export function toCommandError(e: unknown): CommandError {
  if (isCommandError(e)) return e;
  return { code: "internal", message: String(e) };
}

export interface TerminalInfo {
  role: "kiosk" | "counter";
  site: string;
  site_name: string;
  language: "ko" | "en";
  queued: number;
  today: string;
  /** Sizes for the configured screen (barrier-free rules, in pixels), when one is configured. */
  sizes?: ScreenSizes | null;
}

export interface ScreenSizes {
  px_per_mm: number;
  min_text_mm: number;
  body_font_px: number;
  min_target_px: number;
}

export interface ConfirmedEnrollment {
  local_no: number;
  op_id: string;
  name: string;
  age: number;
  created_at: string;
}

export interface WeekDay {
  day: string;
  steps: number;
  points: number;
  future: boolean;
}

export interface MemberView {
  member_no: string;
  name: string;
  age: number;
  goal: number;
  week: { days: WeekDay[]; total_steps: number; total_points: number };
  year_points: number;
  /** From the member's watch; absent from older terminals. */
  heart?: HeartWeek;
}

export interface HeartWeek {
  days: { day: string; mvpa_minutes: number; resting_bpm: number | null }[];
  mvpa_minutes: number;
  resting_bpm: number | null;
}
