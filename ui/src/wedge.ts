// Telling a USB keyboard-wedge scanner from a person typing, in the browser: the same rule and
// thresholds as merchant-core's `scanner::WedgeDetector` (docs/counter-redemption.md). A
// scanner types a burst of keys a few milliseconds apart and ends with Enter; a person types a
// key every hundred milliseconds or more.

/** The longest gap between two keys of a burst, Enter included (ms). */
export const MAX_GAP_MS = 40;
/** The fewest characters a scan has: shorter bursts are typing. */
export const MIN_LEN = 8;

export type WedgeKey =
  | { kind: "char"; char: string }
  | { kind: "enter" }
  | { kind: "modifier" }
  | { kind: "other" };

export interface Scan {
  text: string;
  startedAtMs: number;
  endedAtMs: number;
}

/** A browser key (`KeyboardEvent.key`) as the detector sees it. */
export function classify(key: string): WedgeKey {
  if (key === "Enter") return { kind: "enter" };
  if (["Shift", "CapsLock", "Control", "Alt", "AltGraph", "Meta"].includes(key)) {
    return { kind: "modifier" };
  }
  if ([...key].length === 1) return { kind: "char", char: key };
  return { kind: "other" };
}

export class WedgeDetector {
  private burst = "";
  private startedAtMs = 0;
  private lastAtMs: number | null = null;

  constructor(
    private readonly maxGapMs = MAX_GAP_MS,
    private readonly minLen = MIN_LEN,
  ) {}

  /** The characters of the burst under way (possibly typing). */
  get pending(): string {
    return this.burst;
  }

  private fast(atMs: number): boolean {
    return this.lastAtMs !== null && Math.max(0, atMs - this.lastAtMs) <= this.maxGapMs;
  }

  private reset(): void {
    this.burst = "";
    this.lastAtMs = null;
  }

  /** Takes the next key; returns the scan when Enter ends a fast burst long enough. */
  push(key: WedgeKey, atMs: number): Scan | null {
    switch (key.kind) {
      case "modifier":
        return null;
      case "other":
        this.reset();
        return null;
      case "char":
        if (!this.fast(atMs)) {
          this.burst = "";
          this.startedAtMs = atMs;
        }
        this.burst += key.char;
        this.lastAtMs = atMs;
        return null;
      case "enter": {
        const ok = this.fast(atMs) && [...this.burst].length >= this.minLen;
        const scan = ok
          ? { text: this.burst, startedAtMs: this.startedAtMs, endedAtMs: atMs }
          : null;
        this.reset();
        return scan;
      }
    }
  }
}
