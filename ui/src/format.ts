// Pure helpers for what the screens print; tested on their own.

/** A kiosk's local receipt number, zero-padded to four digits: 7 -> "0007". */
export function receiptNo(localNo: number): string {
  return String(localNo).padStart(4, "0");
}

/** Thousands separators as Koreans and English readers both expect: 12345 -> "12,345". */
export function grouped(n: number): string {
  return Math.round(n)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** Bar heights in percent of the track, scaled to the larger of the week's best day and the goal. */
export function barHeights(steps: number[], goal: number): number[] {
  const top = Math.max(goal, ...steps, 1);
  return steps.map((s) => Math.round((100 * Math.max(0, s)) / top));
}

/** Only digits, as a keypad would give them: "1950-03-01" -> "19500301". */
export function digitsOnly(s: string): string {
  return s.replace(/\D/g, "");
}
