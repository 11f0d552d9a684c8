// The typed edge of the Rust commands. Their argument and result types are generated from the
// Rust types into `bindings/` (ts-rs; `cargo test -p terminal-app --test ts_bindings` fails
// when they are stale). Errors arrive as { code, message }; switch on code.

export type Invoke = <T>(cmd: string, args?: Record<string, unknown>) => Promise<T>;

import type { ConfirmedEnrollment } from "./bindings/ConfirmedEnrollment";
import type { HeartWeek } from "./bindings/HeartWeek";
import type { MemberView } from "./bindings/MemberView";
import type { Sizes as ScreenSizes } from "./bindings/Sizes";
import type { TerminalInfo } from "./bindings/TerminalInfo";
import type { WeekDay } from "./bindings/WeekDay";

export type { ConfirmedEnrollment, HeartWeek, MemberView, ScreenSizes, TerminalInfo, WeekDay };

import type { CommandError } from "./bindings/CommandError";
import type { ErrorCode } from "./bindings/ErrorCode";

export type { CommandError, ErrorCode };

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
