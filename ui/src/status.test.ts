import { describe, expect, it } from "vitest";
import { labels } from "./i18n";
import type { Invoke } from "./ipc";
import { renderStatus, type SyncStatus } from "./status";
import { shell } from "./test-support";

const base: SyncStatus = {
  role: "kiosk",
  provisioned: true,
  online: true,
  queued: 2,
  in_flight: 1,
  rejected: 0,
  last_good_sync: "2025-12-03T10:15:00+09:00",
  last_error: null,
  last_pull: "2025-12-03T10:15:00+09:00",
};

function check(s: Partial<SyncStatus>, lang: "ko" | "en", expected: string, state: string): void {
  const el = document.createElement("footer");
  renderStatus(el, { ...base, ...s }, labels(lang));
  expect(el.dataset.state).toBe(state);
  expect(
    Array.from(el.children)
      .map((c) => c.textContent)
      .join(" | "),
  ).toBe(expected);
}

describe("sync status bar", () => {
  it("says online or offline and what waits, Korean first", () => {
    check({}, "ko", "온라인 | 보낼 등록 3건 | 마지막 동기화 10:15", "online");
    check(
      { online: false, role: "counter", rejected: 2, last_good_sync: null },
      "ko",
      "오프라인 (저장해 두었다가 연결되면 보냅니다) | 보낼 거래 3건 | 거부 2건: 관리자에게 알려 주세요 | 동기화 기록 없음",
      "offline",
    );
    check(
      { online: null },
      "en",
      "Checking the connection | 3 sign-ups to send | Last sync 10:15",
      "unknown",
    );
    check(
      { provisioned: false, online: null, queued: 0, in_flight: 0 },
      "en",
      "Terminal not provisioned | 0 sign-ups to send | Last sync 10:15",
      "unprovisioned",
    );
  });

  it("keeps the last error as the bar's title for the operator", () => {
    const el = document.createElement("footer");
    renderStatus(
      el,
      { ...base, online: false, last_error: "서버에 연결할 수 없습니다 / cannot reach" },
      labels("ko"),
    );
    expect(el.title).toContain("서버에 연결할 수 없습니다");
  });
});

describe("the app's status bar", () => {
  it("stands before the screen and shows what sync_status says", async () => {
    const page = shell();
    const get = (id: string) => document.getElementById(id) as HTMLElement;
    const { start } = await import("./app");
    const invoke = (async (cmd: string) => {
      if (cmd === "terminal_info")
        return {
          role: "counter",
          site: "s",
          site_name: "온누리약국",
          language: "ko",
          queued: 4,
          today: "2025-12-03",
        };
      if (cmd === "sync_status")
        return { ...base, role: "counter", online: false, queued: 4, in_flight: 0 };
      throw { code: "internal", message: `no answer for ${cmd}` };
    }) as Invoke;
    await start(page, invoke);
    await new Promise((r) => setTimeout(r, 0));
    const bar = get("sync-status");
    expect(bar.nextElementSibling?.id).toBe("app");
    expect(get("sync-online").textContent).toBe("오프라인 (저장해 두었다가 연결되면 보냅니다)");
    expect(get("sync-queued").textContent).toBe("보낼 거래 4건");
  });

  it("has a send-now button that asks for a sync and keeps the bar's text when nothing changed", async () => {
    const page = shell();
    const get = (id: string) => document.getElementById(id) as HTMLElement;
    const { startStatusBar } = await import("./status");
    const asked: string[] = [];
    const invoke = (async (cmd: string) => {
      asked.push(cmd);
      if (cmd === "sync_status") return { ...base, online: false };
      if (cmd === "send_now") return null;
      throw { code: "internal", message: `no answer for ${cmd}` };
    }) as Invoke;
    const refresh = startStatusBar(invoke, () => "ko", page.app);
    await refresh();
    const before = get("sync-online");
    await refresh();
    // Nothing changed: the same element, so a screen reader is not told it again.
    expect(get("sync-online")).toBe(before);
    const button = get("sync-send-now") as HTMLButtonElement;
    expect(button.hidden).toBe(false);
    expect(button.textContent).toBe("지금 보내기");
    button.click();
    await new Promise((r) => setTimeout(r, 0));
    expect(asked).toContain("send_now");
    expect(button.textContent).toBe("보내는 중…");
  });
});
