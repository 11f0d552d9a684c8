import { afterEach, describe, expect, it, vi } from "vitest";
import { start } from "./app";
import { type Answers, fakeInvoke, flush, shell } from "./test-support";

const info = {
  role: "kiosk",
  site: "jongno",
  site_name: "종로구 보건소",
  language: "ko",
  queued: 0,
  today: "2025-12-03",
};

const setup = {
  consents: [],
  warn_after_s: 90,
  clear_after_s: 120,
  printer: true,
  admission: { schedule: false, places: null, remaining: null },
};

const card = {
  op_id: "PP-00000001",
  signed: true,
  qr_content: "PP1:NEWCARD",
  qr_svg: "<svg xmlns='http://www.w3.org/2000/svg'></svg>",
  page_html: "<p>card</p>",
  receipt_no: "",
  masked_name: "김*희",
  member_no: "PP-00000001",
  issued: "2025-12-03",
  printer: true,
};

function answers(extra: Answers = {}): Answers {
  return {
    terminal_info: () => info,
    kiosk_setup: () => setup,
    kiosk_today: () => [],
    speak: () => ({ spoken: false }),
    find_card_replacement: () => ({ member_no: "PP-00000001", masked_name: "김*희", serial: 2 }),
    replace_lost_card: (args) => {
      if (args?.pin !== args?.pinAgain) {
        throw { code: "pin_mismatch", message: "두 번 누른 비밀번호가 서로 다릅니다." };
      }
      return card;
    },
    print_replacement_card: () => ({ bytes: 120 }),
    ...extra,
  };
}

const byId = (id: string) => document.getElementById(id) as HTMLElement;
const input = (id: string) => document.getElementById(id) as HTMLInputElement;

function type(id: string, value: string): void {
  input(id).value = value;
  input(id).dispatchEvent(new Event("input", { bubbles: true }));
}

async function openReplacement(a: Answers) {
  const fake = fakeInvoke(a);
  await start(shell(), fake.invoke);
  await flush(4);
  byId("replace-card").click();
  await flush();
  expect(byId("replace-heading").textContent).toBe("잃어버린 카드 재발급");
  type("replace-name", "김영희");
  type("replace-birth", "19500301");
  type("replace-phone", "010-1234-5678");
  return fake;
}

const applicant = {
  name: "김영희",
  birth_date: "19500301",
  phone: "010-1234-5678",
  residency: "lives",
};

afterEach(() => {
  vi.useRealTimers();
});

describe("replacing a lost card at the kiosk", () => {
  it("finds the member, takes the PIN twice and shows and prints the new card", async () => {
    const { calls } = await openReplacement(answers());
    byId("replace-find").click();
    await flush(2);
    expect(calls.find((c) => c.cmd === "find_card_replacement")?.args).toEqual({ applicant });
    expect(byId("replace-found").textContent).toBe("김*희 님 (PP-00000001): 새 카드 2번");

    type("card-pin", "135792");
    type("card-pin-again", "135793");
    byId("replace-make").click();
    await flush(2);
    expect(byId("error-code").textContent).toBe("pin_mismatch");
    expect(input("card-pin").value).toBe("");

    type("card-pin", "135792");
    type("card-pin-again", "135792");
    byId("replace-make").click();
    await flush(2);
    expect(calls.filter((c) => c.cmd === "replace_lost_card").at(-1)?.args).toEqual({
      applicant,
      pin: "135792",
      pinAgain: "135792",
    });
    expect(byId("replace-body").dataset.stage).toBe("card");
    expect(byId("card-qr").dataset.content).toBe("PP1:NEWCARD");
    expect(byId("card-number").textContent).toContain("PP-00000001");

    byId("print-card").click();
    await flush(2);
    expect(calls.find((c) => c.cmd === "print_replacement_card")?.args).toEqual({
      memberNo: "PP-00000001",
    });
    expect(byId("printed").textContent).toBe("영수증 프린터로 보냈습니다.");

    byId("replace-back").click();
    await flush(2);
    expect(byId("replace-heading")).toBeNull();
    expect(input("name").value).toBe("");
  });

  it("shows each refusal with its own code and keeps what was typed", async () => {
    const refusals = [
      { code: "not_a_member", message: "회원을 찾지 못했습니다." },
      { code: "no_replacement", message: "아직 재발급이 허용되지 않았습니다." },
      { code: "server_needed", message: "잠시 후 다시 시도해 주세요." },
    ];
    await openReplacement(
      answers({
        find_card_replacement: () => {
          throw refusals.shift();
        },
      }),
    );
    for (const code of ["not_a_member", "no_replacement", "server_needed"]) {
      byId("replace-find").click();
      await flush(2);
      expect(byId("error-code").textContent).toBe(code);
      expect(byId("replace-body").dataset.stage).toBe("find");
      expect(input("replace-phone").value).toBe("010-1234-5678");
    }
  });

  it("says a card signed already is refused for another PIN", async () => {
    await openReplacement(
      answers({
        replace_lost_card: () => {
          throw { code: "card_exists", message: "새 카드는 이미 발급되었습니다." };
        },
      }),
    );
    byId("replace-find").click();
    await flush(2);
    type("card-pin", "246801");
    type("card-pin-again", "246801");
    byId("replace-make").click();
    await flush(2);
    expect(byId("error-code").textContent).toBe("card_exists");
    expect(byId("replace-body").dataset.stage).toBe("pin");
  });

  it("clears what was typed and goes back to the first screen when left untouched", async () => {
    vi.useFakeTimers();
    const fake = fakeInvoke(answers());
    const started = start(shell(), fake.invoke);
    await vi.advanceTimersByTimeAsync(0);
    await started;
    await vi.advanceTimersByTimeAsync(0);
    byId("replace-card").click();
    type("replace-name", "김영희");
    // The kiosk's own timings: warned after 90 s, cleared 120 s later.
    await vi.advanceTimersByTimeAsync(209_000);
    expect(input("replace-name").value).toBe("김영희");
    await vi.advanceTimersByTimeAsync(2_000);
    expect(byId("replace-heading")).toBeNull();
    expect(input("name").value).toBe("");
  });
});
