import { afterEach, describe, expect, it, vi } from "vitest";
import { start } from "./app";
import { fakeInvoke, flush, shell } from "./test-support";

const info = {
  role: "kiosk",
  site: "jongno",
  site_name: "종로구 보건소",
  language: "ko",
  queued: 0,
  today: "2025-12-03",
};

const setup = {
  consents: [
    { id: "personal-data", version: "2025-12", required: true, title: "개인정보 수집·이용" },
    { id: "sms-news", version: "2025-12", required: false, title: "문자로 사업 소식 받기" },
  ],
  warn_after_s: 90,
  clear_after_s: 120,
  printer: true,
  admission: { schedule: true, places: 10, remaining: 9 },
};

const registered = {
  enrollment: {
    local_no: 1,
    op_id: "op-1",
    name: "김*희",
    age: 75,
    created_at: "2025-12-03T10:00:00+09:00",
  },
  place: 2,
  admitted_by: "lease",
  card: {
    op_id: "op-1",
    signed: false,
    qr_content: "op-1",
    qr_svg: "<svg xmlns='http://www.w3.org/2000/svg'></svg>",
    page_html: "<p>card</p>",
    receipt_no: "0001",
    masked_name: "김*희",
    member_no: null,
    issued: "2025-12-03",
    printer: true,
  },
};

function answers(extra: Record<string, (args?: Record<string, unknown>) => unknown> = {}) {
  return {
    terminal_info: () => info,
    kiosk_setup: () => setup,
    kiosk_today: () => [],
    speak: () => ({ spoken: false }),
    check_identity: () => ({ masked_name: "김*희", age: 75, admitted_by: "lease" }),
    check_consent: () => null,
    register: () => registered,
    print_card: () => ({ bytes: 100 }),
    issue_member_card: (args?: Record<string, unknown>) => {
      if (args?.pin !== args?.pinAgain) {
        throw { code: "pin_mismatch", message: "두 번 누른 비밀번호가 서로 다릅니다." };
      }
      return {
        ...registered.card,
        signed: true,
        qr_content: "PP1:CARD",
        member_no: "PP-00000001",
      };
    },
    ...extra,
  };
}

const byId = (id: string) => document.getElementById(id) as HTMLElement;
const input = (id: string) => document.getElementById(id) as HTMLInputElement;

/** The kiosk started on fake timers with a name typed, so that the inactivity timers run. */
async function nameTypedOnFakeTimers(): Promise<void> {
  vi.useFakeTimers();
  const { invoke } = fakeInvoke(answers());
  await start(shell(), invoke);
  await vi.advanceTimersByTimeAsync(0);
  input("name").value = "김영희";
  input("name").dispatchEvent(new Event("input", { bubbles: true }));
}

function pressKeys(keys: string): void {
  for (const k of keys) (document.querySelector(`.key[data-key='${k}']`) as HTMLElement).click();
}

afterEach(() => {
  vi.useRealTimers();
});

describe("kiosk steps", () => {
  it("walks identity, consent, contact, watch and card, with the keypad", async () => {
    const s = shell();
    const { invoke, calls } = fakeInvoke(answers());
    await start(s, invoke);
    await flush(4);
    expect(byId("steps").querySelector("[aria-current=step]")?.textContent).toBe("본인 확인");
    input("name").value = "김영희";
    input("name").dispatchEvent(new Event("input"));
    input("birth-date").dispatchEvent(new Event("focus"));
    pressKeys("19500301");
    input("phone").dispatchEvent(new Event("focus"));
    pressKeys("010123456789");
    (document.querySelector(".key[data-key='back']") as HTMLElement).click();
    expect(input("birth-date").value).toBe("19500301");
    expect(input("phone").value).toBe("01012345678");
    byId("residency-works").click();
    expect(byId("proof-hint").hidden).toBe(false);
    byId("next-identity").click();
    await flush(4);
    expect(calls.find((c) => c.cmd === "check_identity")?.args).toEqual({
      applicant: {
        name: "김영희",
        birth_date: "19500301",
        phone: "01012345678",
        residency: "works",
      },
    });
    expect(byId("step-body").dataset.step).toBe("consent");
    byId("consent-personal-data-yes").click();
    byId("consent-sms-news-no").click();
    byId("next-consent").click();
    await flush(4);
    expect(byId("step-body").dataset.step).toBe("contact");
    expect(byId("contact-phone").textContent).toContain("01012345678");
    byId("enroll").click();
    await flush(4);
    const reg = calls.find((c) => c.cmd === "register")?.args;
    expect(reg?.consents).toEqual([
      { id: "personal-data", version: "2025-12", agreed: true },
      { id: "sms-news", version: "2025-12", agreed: false },
    ]);
    expect(reg?.contact).toEqual({ guardian_phone: "" });
    expect(byId("receipt-no").textContent).toBe("접수번호 0001");
    expect(byId("admitted").textContent).toBe("오늘 이곳의 2번째 가입으로 확정되었습니다.");
    byId("to-card").click();
    await flush(4);
    // Until the server signs a card: the receipt, and the PIN to choose on the keypad.
    expect(byId("card").dataset.signed).toBe("false");
    expect(byId("card-title").textContent).toBe("팔팔 가입 접수증");
    expect(byId("card-qr").dataset.content).toBe("op-1");
    expect(byId("card-qr").querySelector("svg")).not.toBeNull();
    expect(byId("card-number").textContent).toContain("서버 확인 후");
    expect(input("card-pin").type).toBe("password");
    input("card-pin").dispatchEvent(new Event("focus"));
    pressKeys("8024179");
    input("card-pin-again").dispatchEvent(new Event("focus"));
    pressKeys("802471");
    expect(input("card-pin").value).toBe("802417");
    byId("make-card").click();
    await flush(4);
    expect(byId("error-code").textContent).toBe("pin_mismatch");
    expect(byId("pin-error").textContent).toBe("두 번 누른 비밀번호가 서로 다릅니다.");
    expect(input("card-pin").value).toBe("");
    expect(input("card-pin-again").value).toBe("");
    input("card-pin").dispatchEvent(new Event("focus"));
    pressKeys("802417");
    input("card-pin-again").dispatchEvent(new Event("focus"));
    pressKeys("802417");
    byId("make-card").click();
    await flush(4);
    expect(calls.filter((c) => c.cmd === "issue_member_card").at(-1)?.args).toEqual({
      opId: "op-1",
      pin: "802417",
      pinAgain: "802417",
    });
    expect(byId("card").dataset.signed).toBe("true");
    expect(byId("card-title").textContent).toBe("팔팔 회원 카드");
    expect(byId("card-qr").dataset.content).toBe("PP1:CARD");
    expect(byId("card-number").textContent).toBe("회원번호 PP-00000001");
    expect(document.getElementById("pin-form")).toBeNull();
    byId("print-card").click();
    await flush(4);
    expect(calls.find((c) => c.cmd === "print_card")?.args).toEqual({ opId: "op-1" });
    expect(byId("printed").textContent).toBe("영수증 프린터로 보냈습니다.");
    // Every step was spoken, at the default volume and speed.
    const spoken = calls.filter((c) => c.cmd === "speak").map((c) => c.args?.text);
    expect(spoken).toContain("동의 항목을 확인해 주세요. 필수 항목에 동의해야 가입할 수 있습니다.");
    expect(spoken).toContain(
      "회원 카드 비밀번호 숫자 6자리를 정해서 두 번 눌러 주세요. 포인트를 쓸 때 필요합니다. 다 누르면 회원 카드 만들기를 누르세요.",
    );
    expect(spoken.at(-1)).toBe("회원 카드가 나왔습니다. 비밀번호는 적어 두지 마세요.");
    byId("new-applicant").click();
    expect(byId("step-body").dataset.step).toBe("identity");
    expect(input("name").value).toBe("");
  });

  it("shows a refusal with its code, offers a ticket for another day, keeps what was typed", async () => {
    const s = shell();
    const { invoke } = fakeInvoke(
      answers({
        check_identity: () => {
          throw { code: "not_today", message: "오늘은 해당 출생연도(나이)의 가입일이 아닙니다." };
        },
        issue_ticket: () => ({ day: "2025-12-05", number: 3, message: "번호표 3번" }),
      }),
    );
    await start(s, invoke);
    await flush(4);
    input("name").value = "박철수";
    input("name").dispatchEvent(new Event("input"));
    byId("next-identity").click();
    await flush(4);
    expect(byId("error-code").textContent).toBe("not_today");
    expect(byId("error-message").textContent).toContain("가입일이 아닙니다");
    expect(input("name").value).toBe("박철수");
    byId("ticket").click();
    await flush(4);
    expect(byId("ticket-no").textContent).toBe("번호표 3번");
  });

  it("speaks louder, slower, or not at all, as asked", async () => {
    const s = shell();
    const { invoke, calls } = fakeInvoke(answers());
    await start(s, invoke);
    await flush(4);
    byId("volume-up").click();
    byId("speed-down").click();
    const last = calls.filter((c) => c.cmd === "speak").at(-1);
    expect(last?.args).toMatchObject({ volume: 150, speed: 120 });
    expect(byId("volume").textContent).toBe("소리 3");
    for (let i = 0; i < 5; i++) byId("volume-down").click();
    expect(byId("volume").textContent).toBe("소리 끔");
  });

  it("asks before clearing, and clears only after the second wait", async () => {
    await nameTypedOnFakeTimers();
    await vi.advanceTimersByTimeAsync(89_000);
    expect(byId("idle-dialog").hidden).toBe(true);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(byId("idle-dialog").hidden).toBe(false);
    expect(byId("idle-question").textContent).toBe("계속하시겠습니까?");
    byId("idle-continue").click();
    expect(byId("idle-dialog").hidden).toBe(true);
    expect(input("name").value).toBe("김영희");
    // Asked again after 90 s more; cleared 120 s after that, not before.
    await vi.advanceTimersByTimeAsync(90_000 + 119_000);
    expect(byId("idle-dialog").hidden).toBe(false);
    expect(input("name").value).toBe("김영희");
    await vi.advanceTimersByTimeAsync(2_000);
    expect(byId("idle-dialog").hidden).toBe(true);
    expect(input("name").value).toBe("");
  });

  it("moves the focus to each new screen's heading, and after agree-all to next", async () => {
    const s = shell();
    const { invoke } = fakeInvoke(answers());
    await start(s, invoke);
    await flush(4);
    // The first screen does not take the focus from anyone.
    expect(document.activeElement).not.toBe(byId("step-heading"));
    input("name").value = "김영희";
    input("name").dispatchEvent(new Event("input", { bubbles: true }));
    byId("next-identity").click();
    await flush(4);
    expect(document.activeElement?.id).toBe("step-heading");
    expect(byId("step-heading").textContent).toBe("5단계 중 2단계: 동의");
    // The first thing after the heading is "agree all": one Tab away.
    const heading = byId("step-heading");
    expect(heading.nextElementSibling?.id).toBe("agree-all");
    byId("agree-all").click();
    await flush(2);
    expect(document.activeElement?.id).toBe("next-consent");
    byId("next-consent").click();
    await flush(4);
    expect(document.activeElement?.id).toBe("step-heading");
    expect(byId("step-heading").textContent).toBe("5단계 중 3단계: 연락처");
  });

  it("names each consent button with its item and the residency choices with their question", async () => {
    const s = shell();
    const { invoke } = fakeInvoke(answers());
    await start(s, invoke);
    await flush(4);
    const legend = document.querySelector("fieldset.choices-group legend");
    expect(legend?.textContent).toBe("서울과의 관계");
    expect(legend?.parentElement?.querySelector("#residency-lives")).not.toBeNull();
    input("name").value = "김영희";
    byId("next-identity").click();
    await flush(4);
    expect(byId("consent-personal-data-yes").getAttribute("aria-label")).toBe(
      "동의: 개인정보 수집·이용",
    );
    expect(byId("consent-sms-news-no").getAttribute("aria-label")).toBe(
      "동의 안 함: 문자로 사업 소식 받기",
    );
    const group = byId("consent-personal-data-yes").closest("[role=group]");
    expect(group?.getAttribute("aria-labelledby")).toBe("consent-personal-data-title");
  });

  it("asks in a named modal dialog that Escape answers with continue", async () => {
    await nameTypedOnFakeTimers();
    await vi.advanceTimersByTimeAsync(91_000);
    const dialog = byId("idle-dialog");
    expect(dialog.tagName).toBe("DIALOG");
    expect(dialog.hidden).toBe(false);
    expect(dialog.getAttribute("aria-modal")).toBe("true");
    expect(byId(dialog.getAttribute("aria-labelledby") ?? "").textContent).toBe(
      "계속하시겠습니까?",
    );
    expect(document.activeElement?.id).toBe("idle-continue");
    dialog.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
    expect(dialog.hidden).toBe(true);
    expect(input("name").value).toBe("김영희");
  });
});
