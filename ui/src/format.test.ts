import { describe, expect, it } from "vitest";
import { barHeights, digitsOnly, grouped, receiptNo } from "./format";

describe("format", () => {
  it("pads receipt numbers to four digits", () => {
    expect(receiptNo(7)).toBe("0007");
    expect(receiptNo(12345)).toBe("12345");
  });

  it("groups thousands", () => {
    expect(grouped(0)).toBe("0");
    expect(grouped(8000)).toBe("8,000");
    expect(grouped(1234567)).toBe("1,234,567");
  });

  it("scales bars to the goal when nobody reached it, and to the best day otherwise", () => {
    expect(barHeights([4000, 0, 2000], 8000)).toEqual([50, 0, 25]);
    expect(barHeights([16000, 8000], 8000)).toEqual([100, 50]);
    expect(barHeights([], 0)).toEqual([]);
  });

  it("keeps only digits", () => {
    expect(digitsOnly("1950-03-01")).toBe("19500301");
  });
});
