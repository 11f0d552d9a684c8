import { describe, expect, it } from "vitest";
import { labels } from "./i18n";
import type { Invoke } from "./ipc";
import { listenForScans, redeemPanel, type Scanned, settlementPanel } from "./redeem";
import { classify, WedgeDetector } from "./wedge";

/** Types `keys` (⏎ Enter, ⇧ Shift, ⌫ Backspace, |N| waits N ms) `step` ms apart: the scans. */
function run(keys: string, step: number): string[] {
  const d = new WedgeDetector();
  let at = 1000;
  const scans: string[] = [];
  const chars = [...keys];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i] ?? "";
    if (c === "|") {
      const end = chars.indexOf("|", i + 1);
      at += Number(chars.slice(i + 1, end).join(""));
      i = end;
      continue;
    }
    const key = c === "⏎" ? "Enter" : c === "⇧" ? "Shift" : c === "⌫" ? "Backspace" : c;
    const scan = d.push(classify(key), at);
    if (scan) scans.push(`${scan.text} (${scan.startedAtMs}..${scan.endedAtMs} ms)`);
    at += step;
  }
  return scans;
}

describe("wedge detector (the same table as merchant-core's scanner tests)", () => {
  it("tells bursts from typing", () => {
    expect(run("PP1:ABC123⏎", 5)).toEqual(["PP1:ABC123 (1000..1050 ms)"]);
    expect(run("PP1:ABC123⏎", 40)).toEqual(["PP1:ABC123 (1000..1400 ms)"]);
    expect(run("PP1:ABC123⏎", 41)).toEqual([]);
    expect(run("PP1:ABC123⏎", 120)).toEqual([]);
    expect(run("1234567⏎", 5)).toEqual([]);
    expect(run("12345678⏎", 5)).toEqual(["12345678 (1000..1040 ms)"]);
    expect(run("PP1:ABC123", 5)).toEqual([]);
    expect(run("PP1:AAAAAA⏎|500|8801234567893⏎", 5)).toEqual([
      "PP1:AAAAAA (1000..1050 ms)",
      "8801234567893 (1555..1620 ms)",
    ]);
  });
  it("breaks a burst on a slow key or an edit, and ignores Shift", () => {
    expect(run("PP1:AB|200|C1⏎", 5)).toEqual([]);
    expect(run("12|300|PP1:ABC123⏎", 5)).toEqual(["PP1:ABC123 (1310..1360 ms)"]);
    expect(run("PP1:ABC123|100|⏎", 5)).toEqual([]);
    expect(run("PP1:AB⌫C123⏎", 5)).toEqual([]);
    expect(run("⇧P⇧P1:⇧A⇧B⇧C123⏎", 5)).toEqual(["PP1:ABC123 (1005..1075 ms)"]);
  });
});

const flush = () => new Promise((r) => setTimeout(r, 0));

function key(target: EventTarget, k: string, timeStamp: number): KeyboardEvent {
  const ev = new KeyboardEvent("keydown", { key: k, bubbles: true, cancelable: true });
  Object.defineProperty(ev, "timeStamp", { value: timeStamp });
  target.dispatchEvent(ev);
  return ev;
}

describe("scanning at the counter", () => {
  it("takes a scan typed into an input back out, and keeps its Enter from the input", () => {
    document.body.innerHTML = `<input id="member-no" />`;
    const input = document.getElementById("member-no") as HTMLInputElement;
    const scans: string[] = [];
    let enterReachedInput = false;
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") enterReachedInput = true;
    });
    const stop = listenForScans(document, (t) => scans.push(t));
    input.value = "PP-";
    let at = 100;
    for (const c of "PP1:ABCDEFGH") {
      key(input, c, at);
      input.value += c; // what the browser would type
      at += 3;
    }
    key(input, "Enter", at);
    expect(scans).toEqual(["PP1:ABCDEFGH"]);
    expect(input.value).toBe("PP-");
    expect(enterReachedInput).toBe(false);
    stop();
  });
});

const scanned: Scanned = {
  token: "PP1:TOKEN",
  kind: "card",
  claims: null,
  member_no: "PP-0002",
  name: "박철수",
  available: 12340,
  balance_as_of: "2025-12-02T15:00:00Z",
  expires_at: "2025-12-03T06:02:00Z",
  needs_pin: true,
  offline: true,
  limits: { min: 100, max: 100000, per_transaction: 10000, per_day: 20000 },
  member: null,
};

describe("redemption panel", () => {
  it("shows the scanned member with the code scanned, which pairs a new watch", async () => {
    const view = { member_no: "PP-0002" } as unknown as NonNullable<Scanned["member"]>;
    const invoke = (async (cmd: string) => {
      if (cmd === "scan_token") return { ...scanned, member: view };
      throw { code: "internal", message: cmd };
    }) as Invoke;
    const shown: [unknown, string][] = [];
    const panel = redeemPanel({
      invoke,
      t: labels("ko"),
      showMember: (v, token) => shown.push([v, token]),
    });
    document.body.replaceChildren(panel.section);
    await panel.scan("PP1:TOKEN");
    expect(shown).toEqual([[view, "PP1:TOKEN"]]);
  });

  it("sends the amount and PIN to Rust, shows the receipt, and voids on a second press", async () => {
    const calls: { cmd: string; args?: Record<string, unknown> }[] = [];
    const invoke = (async (cmd: string, args?: Record<string, unknown>) => {
      calls.push({ cmd, args });
      if (cmd === "scan_token") return scanned;
      if (cmd === "redeem") {
        return {
          hold_id: "H-ABC",
          member_no: "PP-0002",
          amount: 5000,
          remaining: 7340,
          offline: true,
          created_at: "2025-12-03T06:00:00Z",
          receipt_html: "<p>영수증</p>",
          printed: null,
          printer_message: null,
        };
      }
      if (cmd === "void_hold") return { hold_id: "H-ABC", amount: 5000, at: "", available: 12340 };
      throw { code: "internal", message: cmd };
    }) as Invoke;
    const panel = redeemPanel({ invoke, t: labels("ko") });
    document.body.replaceChildren(panel.section);
    await panel.scan("pp1:token");
    expect(document.getElementById("available")?.textContent).toBe("12,340");
    expect(document.getElementById("scanned-member")?.textContent).toBe(
      "박철수 (PP-0002) · 회원카드",
    );
    (document.getElementById("amount") as HTMLInputElement).value = "5,000";
    (document.getElementById("pin") as HTMLInputElement).value = "123456";
    document.getElementById("redeem-go")?.click();
    await flush();
    expect(calls[1]).toEqual({
      cmd: "redeem",
      args: { token: "PP1:TOKEN", amount: 5000, pin: "123456" },
    });
    expect(document.getElementById("redeem-done")?.textContent).toBe(
      "5,000포인트를 사용했습니다. 남은 포인트 7,340점.",
    );
    expect(document.getElementById("hold-id")?.textContent).toBe("H-ABC");
    const voidBtn = document.getElementById("void-hold") as HTMLButtonElement;
    voidBtn.click();
    await flush();
    expect(calls.some((c) => c.cmd === "void_hold")).toBe(false);
    voidBtn.click();
    await flush();
    expect(calls.at(-1)).toEqual({ cmd: "void_hold", args: { holdId: "H-ABC" } });
    expect(document.getElementById("void-result")?.textContent).toBe(
      "결제를 취소했습니다. 5,000포인트를 돌려드렸습니다.",
    );
  });

  it("shows a refusal's message and code as Rust sent them", async () => {
    const invoke = (async () => {
      throw { code: "replayed", message: "이미 사용된 QR 코드입니다." };
    }) as Invoke;
    const panel = redeemPanel({ invoke, t: labels("en") });
    document.body.replaceChildren(panel.section);
    await panel.scan("PP1:X");
    expect(document.querySelector("[role=alert]")?.textContent).toContain(
      "이미 사용된 QR 코드입니다.",
    );
    expect(document.getElementById("error-code")?.textContent).toBe("replayed");
    expect(document.getElementById("scan-hint")?.textContent).toBe(labels("en").redeem.scanHint);
  });
});

describe("settlement panel", () => {
  it("shows the day's figures and saves the CSV where Rust says", async () => {
    const tally = (count: number, points: number) => ({ count, points });
    const calls: { cmd: string; args?: Record<string, unknown> }[] = [];
    const invoke = (async (cmd: string, args?: Record<string, unknown>) => {
      calls.push({ cmd, args });
      if (cmd === "day_settlement") {
        return {
          store: "온누리약국",
          day: "2025-12-03",
          redemptions: tally(3, 6500),
          voids: tally(1, 1500),
          posted: tally(1, 2000),
          pending: tally(1, 3000),
          rejected: tally(0, 0),
          lines: [],
          html: "<p>정산</p>",
        };
      }
      if (cmd === "export_settlement") return { path: "/srv/settlement.csv" };
      throw { code: "internal", message: cmd };
    }) as Invoke;
    document.body.replaceChildren(settlementPanel({ invoke, t: labels("ko") }));
    document.getElementById("settlement-open")?.click();
    await flush();
    expect(calls[0]).toEqual({ cmd: "day_settlement", args: { day: null } });
    const row = (k: string) =>
      document.querySelector(`[data-figure=${k}]`)?.textContent?.replace(/\s+/g, " ");
    expect(row("redemptions")).toBe("사용 전체3건6,500원");
    expect(row("pending")).toBe("확인 대기1건3,000원");
    expect((document.getElementById("settlement-day") as HTMLInputElement).value).toBe(
      "2025-12-03",
    );
    document.getElementById("export-csv")?.click();
    await flush();
    expect(calls[1]).toEqual({ cmd: "export_settlement", args: { day: "2025-12-03" } });
    expect(document.getElementById("export-path")?.textContent).toBe(
      "정산 파일을 저장했습니다: /srv/settlement.csv",
    );
  });
});
