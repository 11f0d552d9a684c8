import { describe, expect, it } from "vitest";
import { start } from "./app";
import { fakeInvoke, flush, shell } from "./test-support";

const kioskInfo = {
  role: "kiosk",
  site: "jongno",
  site_name: "종로구 보건소",
  language: "ko",
  queued: 0,
  today: "2025-12-03",
};

describe("kiosk screen", () => {
  it("sends the applicant to Rust and moves on to consent", async () => {
    const s = shell();
    const { invoke, calls } = fakeInvoke({
      terminal_info: () => kioskInfo,
      kiosk_today: () => [],
      check_identity: () => ({ masked_name: "김*희", age: 75, admitted_by: "no_schedule" }),
    });
    await start(s, invoke);
    await flush();
    expect(s.site.textContent).toBe("종로구 보건소 · 가입 키오스크");
    for (const [id, v] of [
      ["name", "김영희"],
      ["birth-date", "19500301"],
      ["phone", "010-1234-5678"],
    ]) {
      const el = document.getElementById(id ?? "") as HTMLInputElement;
      el.value = v ?? "";
      el.dispatchEvent(new Event("input"));
    }
    document.getElementById("residency-works")?.click();
    document.getElementById("next-identity")?.click();
    await flush();
    await flush();
    const check = calls.find((c) => c.cmd === "check_identity");
    expect(check?.args).toEqual({
      applicant: {
        name: "김영희",
        birth_date: "19500301",
        phone: "010-1234-5678",
        residency: "works",
      },
    });
    expect(document.getElementById("step-body")?.dataset.step).toBe("consent");
  });

  it("shows a refusal's message and code, and keeps what was typed", async () => {
    const s = shell();
    const { invoke } = fakeInvoke({
      terminal_info: () => kioskInfo,
      kiosk_today: () => [],
      check_identity: () => {
        throw { code: "under_age", message: "만 19세 이상부터 가입할 수 있습니다" };
      },
    });
    await start(s, invoke);
    await flush();
    const name = document.getElementById("name") as HTMLInputElement;
    name.value = "어린이";
    name.dispatchEvent(new Event("input"));
    document.getElementById("next-identity")?.click();
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

describe("watch sync at the counter", () => {
  const week = (steps: number) => ({
    days: ["01", "02", "03", "04", "05", "06", "07"].map((d, i) => ({
      day: `2025-12-${d}`,
      steps: i === 2 ? steps : 0,
      points: 0,
      future: i > 2,
    })),
    total_steps: steps,
    total_points: 0,
  });
  const member = (steps: number) => ({
    member_no: "PP-0002",
    name: "박철수",
    age: 72,
    goal: 5000,
    week: week(steps),
    year_points: 0,
    heart: { days: [], mvpa_minutes: 95, resting_bpm: 58 },
  });
  const watches = [
    { address: "AA:00:00:00:00:42", name: "Palpal-0042", short_code: "0042", rssi: -41 },
    { address: "AA:00:00:00:00:07", name: "Palpal-0007", short_code: "0007", rssi: -80 },
  ];

  async function counterWithMember(syncWatch: (args?: Record<string, unknown>) => unknown) {
    const s = shell();
    const fake = fakeInvoke({
      terminal_info: () => ({ ...kioskInfo, role: "counter", site_name: "온누리약국" }),
      find_member: () => member(1200),
      scan_watches: () => watches,
      sync_watch: syncWatch,
    });
    await start(s, fake.invoke);
    (document.getElementById("member-no") as HTMLInputElement).value = "PP-0002";
    document.getElementById("find")?.click();
    await flush();
    document.getElementById("sync-watch")?.click();
    await flush();
    return fake;
  }

  it("lists watches nearest first with their codes, syncs the one picked and redraws the week", async () => {
    const { calls } = await counterWithMember(() => ({
      serial: "PW-0042",
      records: 1470,
      step_reports: 30,
      warnings: [{ code: "low_battery", message: "워치 배터리가 8% 남았습니다." }],
      member: member(9100),
    }));
    expect(document.getElementById("mvpa")?.textContent).toBe("95");
    expect(document.getElementById("resting-hr")?.textContent).toBe("58");
    const choices = [...document.querySelectorAll(".watch-choice")].map((b) => b.textContent);
    expect(choices).toEqual(["0042가까움", "0007멂"]);
    (document.querySelector(".watch-choice[data-code='0042']") as HTMLButtonElement).click();
    await flush();
    await flush();
    // Found by number, not by a scan: no code goes with it (a watch new here is refused).
    expect(calls.find((c) => c.cmd === "sync_watch")?.args).toEqual({
      memberNo: "PP-0002",
      address: "AA:00:00:00:00:42",
      token: null,
    });
    expect(document.getElementById("sync-result")?.textContent).toBe(
      "워치 PW-0042에서 새 기록 1,470건을 받아 저장했습니다. 걸음 보고 30건을 전송 대기에 넣었습니다.",
    );
    expect(document.querySelector(".warning[data-code=low_battery]")?.textContent).toContain("8%");
    expect(document.querySelector(".day[data-day='2025-12-03'] .steps")?.textContent).toBe("9,100");
    expect(document.querySelectorAll("#member").length).toBe(1);
    // Done: the picker folds away and the outcome sits above the week.
    expect(document.getElementById("sync-area")?.hidden).toBe(true);
    expect(document.querySelectorAll(".watch-choice").length).toBe(0);
    expect(document.getElementById("sync-note")?.nextElementSibling?.id).toBe("member");
  });

  it("shows the link's message when the watch is out of range, and the list stays", async () => {
    await counterWithMember(() => {
      throw { code: "watch_out_of_range", message: "워치 Palpal-0042에 연결할 수 없습니다." };
    });
    (document.querySelector(".watch-choice") as HTMLButtonElement).click();
    await flush();
    await flush();
    expect(document.getElementById("error-code")?.textContent).toBe("watch_out_of_range");
    expect(document.querySelector("[role=alert]")?.textContent).toContain("연결할 수 없습니다");
    expect(document.querySelectorAll(".watch-choice").length).toBe(2);
    expect((document.querySelector(".watch-choice") as HTMLButtonElement).disabled).toBe(false);
  });

  it("says so when no watch is nearby", async () => {
    const s = shell();
    const { invoke } = fakeInvoke({
      terminal_info: () => ({ ...kioskInfo, role: "counter" }),
      find_member: () => member(0),
      scan_watches: () => [],
    });
    await start(s, invoke);
    document.getElementById("find")?.click();
    await flush();
    document.getElementById("sync-watch")?.click();
    await flush();
    expect(document.getElementById("watch-status")?.textContent).toContain("찾지 못했습니다");
  });
});

describe("watch pairing at the kiosk", () => {
  async function enrolled(pairWatch: (args?: Record<string, unknown>) => unknown) {
    const s = shell();
    const fake = fakeInvoke({
      terminal_info: () => kioskInfo,
      kiosk_today: () => [],
      kiosk_setup: () => ({
        consents: [],
        warn_after_s: 90,
        clear_after_s: 120,
        printer: false,
        admission: { schedule: false, places: null, remaining: null },
      }),
      check_identity: () => ({ masked_name: "김*희", age: 75, admitted_by: "no_schedule" }),
      check_consent: () => null,
      register: () => ({
        enrollment: {
          local_no: 1,
          op_id: "op-1",
          name: "김*희",
          age: 75,
          created_at: "2025-12-03T10:00:00+09:00",
        },
        place: null,
        admitted_by: "no_schedule",
        card: {},
      }),
      scan_watches: () => [
        { address: "AA:00:00:00:00:07", name: "Palpal-0007", short_code: "0007", rssi: -50 },
      ],
      pair_watch: pairWatch,
    });
    await start(s, fake.invoke);
    await flush();
    const name = document.getElementById("name") as HTMLInputElement;
    name.value = "김영희";
    name.dispatchEvent(new Event("input"));
    for (const step of ["next-identity", "next-consent", "enroll"]) {
      document.getElementById(step)?.click();
      await flush();
      await flush();
      await flush();
    }
    expect(document.getElementById("watch-step")?.hidden).toBe(true);
    document.getElementById("pair-start")?.click();
    await flush();
    (document.querySelector(".watch-choice[data-code='0007']") as HTMLButtonElement).click();
    await flush();
    await flush();
    return fake;
  }

  it("pairs the watch picked to the enrollment just confirmed", async () => {
    const { calls } = await enrolled(() => ({ serial: "PW-0007", warnings: [] }));
    expect(calls.find((c) => c.cmd === "pair_watch")?.args).toEqual({
      opId: "op-1",
      address: "AA:00:00:00:00:07",
    });
    expect(document.getElementById("paired")?.textContent).toBe(
      "워치 PW-0007이(가) 김영희 님에게 연결되었습니다. 워치 시계를 맞췄습니다.",
    );
  });

  it("refuses a watch paired to someone else, with the reason", async () => {
    await enrolled(() => {
      throw {
        code: "watch_paired_elsewhere",
        message: "이 워치(PW-0007)는 다른 회원에게 등록되어 있습니다.",
      };
    });
    expect(document.getElementById("error-code")?.textContent).toBe("watch_paired_elsewhere");
    expect(document.getElementById("paired")).toBeNull();
  });
});
