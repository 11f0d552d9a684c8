import { describe, expect, it } from "vitest";
import { start } from "./app";
import type { Invoke } from "./ipc";

interface Call {
  cmd: string;
  args: Record<string, unknown> | undefined;
}

/** A stand-in for the Rust side that answers from a table and records every call. */
function fakeInvoke(answers: Record<string, (args?: Record<string, unknown>) => unknown>) {
  const calls: Call[] = [];
  const invoke = (async (cmd: string, args?: Record<string, unknown>) => {
    calls.push({ cmd, args });
    const answer = answers[cmd];
    if (!answer) throw { code: "internal", message: `no answer for ${cmd}` };
    return answer(args);
  }) as Invoke;
  return { invoke, calls };
}

function shell() {
  document.body.innerHTML = `<div id="title"></div><div id="site"></div><div id="queued"></div>
    <button id="zoom"></button><button id="lang-toggle"></button><main id="app"></main>`;
  const get = (id: string) => document.getElementById(id) as HTMLElement;
  return {
    app: get("app"),
    site: get("site"),
    queued: get("queued"),
    langToggle: get("lang-toggle") as HTMLButtonElement,
    zoom: get("zoom") as HTMLButtonElement,
    title: get("title"),
  };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

const kioskInfo = {
  role: "kiosk",
  site: "jongno",
  site_name: "종로구 보건소",
  language: "ko",
  queued: 0,
  today: "2025-12-03",
};

describe("kiosk screen", () => {
  it("sends the applicant to Rust and shows the receipt number", async () => {
    const s = shell();
    const { invoke, calls } = fakeInvoke({
      terminal_info: () => kioskInfo,
      list_enrollments_today: () => [],
      enroll_applicant: () => ({
        local_no: 3,
        op_id: "x",
        name: "김영희",
        age: 75,
        created_at: "2025-12-03T10:00:00+09:00",
      }),
    });
    await start(s, invoke);
    await flush();
    expect(s.site.textContent).toBe("종로구 보건소 · 가입 키오스크");
    (document.getElementById("name") as HTMLInputElement).value = "김영희";
    (document.getElementById("birth-date") as HTMLInputElement).value = "19500301";
    (document.getElementById("phone") as HTMLInputElement).value = "010-1234-5678";
    document.getElementById("residency-works")?.click();
    document.getElementById("enroll")?.click();
    await flush();
    await flush();
    const enroll = calls.find((c) => c.cmd === "enroll_applicant");
    expect(enroll?.args).toEqual({
      applicant: {
        name: "김영희",
        birth_date: "19500301",
        phone: "010-1234-5678",
        residency: "works",
      },
    });
    expect(document.getElementById("receipt-no")?.textContent).toBe("접수번호 0003");
  });

  it("shows a refusal's message and code, and keeps what was typed", async () => {
    const s = shell();
    const { invoke } = fakeInvoke({
      terminal_info: () => kioskInfo,
      list_enrollments_today: () => [],
      enroll_applicant: () => {
        throw { code: "under_age", message: "만 19세 이상부터 가입할 수 있습니다" };
      },
    });
    await start(s, invoke);
    await flush();
    (document.getElementById("name") as HTMLInputElement).value = "어린이";
    document.getElementById("enroll")?.click();
    await flush();
    await flush();
    expect(document.getElementById("error-code")?.textContent).toBe("under_age");
    expect(document.querySelector("[role=alert]")?.textContent).toContain("만 19세");
    expect((document.getElementById("name") as HTMLInputElement).value).toBe("어린이");
  });

  it("switches to English through Rust and re-renders", async () => {
    const s = shell();
    let language = "ko";
    const { invoke } = fakeInvoke({
      terminal_info: () => ({ ...kioskInfo, language }),
      list_enrollments_today: () => [],
      set_language: (args) => {
        language = String(args?.language);
        return language;
      },
    });
    await start(s, invoke);
    s.langToggle.click();
    await flush();
    await flush();
    expect(document.querySelector("h1")?.textContent).toBe("New member sign-up");
    expect(s.langToggle.textContent).toBe("한국어");
  });
});

describe("sizes and zoom", () => {
  it("sizes text from the configured screen and zooms everything to 200%", async () => {
    const s = shell();
    const { invoke } = fakeInvoke({
      terminal_info: () => ({
        ...kioskInfo,
        sizes: { px_per_mm: 2.71, min_text_mm: 12, body_font_px: 37, min_target_px: 41 },
      }),
      list_enrollments_today: () => [],
    });
    await start(s, invoke);
    const root = document.documentElement.style;
    expect(root.getPropertyValue("--base")).toBe("37px");
    expect(root.getPropertyValue("--target")).toBe("41px");
    expect(s.zoom.textContent).toBe("글자 크게 100%");
    s.zoom.click();
    s.zoom.click();
    expect(s.zoom.dataset.zoom).toBe("2");
    expect(root.getPropertyValue("--zoom")).toBe("2");
    expect(s.zoom.textContent).toBe("글자 크게 200%");
    s.zoom.click();
    expect(s.zoom.dataset.zoom).toBe("1");
  });
});

describe("start-up failure", () => {
  it("shows why the terminal could not start", async () => {
    const s = shell();
    const { invoke } = fakeInvoke({
      terminal_info: () => {
        throw { code: "not_configured", message: "단말기 설정을 읽지 못했습니다" };
      },
    });
    await start(s, invoke);
    expect(document.getElementById("error-code")?.textContent).toBe("not_configured");
  });
});

describe("counter screen", () => {
  it("draws the member's week with the goal days marked", async () => {
    const s = shell();
    const days = ["01", "02", "03", "04", "05", "06", "07"].map((d, i) => ({
      day: `2025-12-${d}`,
      steps: i < 3 ? 9000 - i * 3000 : 0,
      points: i === 0 ? 100 : 0,
      future: i > 2,
    }));
    const { invoke, calls } = fakeInvoke({
      terminal_info: () => ({ ...kioskInfo, role: "counter", site_name: "온누리약국" }),
      find_member: () => ({
        member_no: "PP-0001",
        name: "박철수",
        age: 72,
        goal: 5000,
        week: { days, total_steps: 18000, total_points: 200 },
        year_points: 3200,
      }),
    });
    await start(s, invoke);
    (document.getElementById("member-no") as HTMLInputElement).value = "PP-0001";
    document.getElementById("find")?.click();
    await flush();
    expect(calls.find((c) => c.cmd === "find_member")?.args).toEqual({ memberNo: "PP-0001" });
    expect(document.getElementById("week-points")?.textContent).toBe("200");
    expect(document.getElementById("year-points")?.textContent).toBe("3,200");
    expect(document.querySelectorAll(".bar-fill.met").length).toBe(2);
  });
});
