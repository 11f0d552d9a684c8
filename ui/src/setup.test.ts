import { describe, expect, it } from "vitest";
import { start } from "./app";
import { renderSetup, setupLabels } from "./setup";
import { fakeInvoke, flush, shell } from "./test-support";

const unprovisioned = {
  role: "kiosk",
  site: "jongno-cc",
  site_name: "종로구 보건소",
  language: "ko",
  queued: 0,
  today: "2025-12-03",
  setup: true,
};

const OFFER = '{"palpal_enroll":1,"code":"7KQ2-M9XD-0RTA-4VHE","server":"http://127.0.0.1:8088"}';

const read = {
  server: "http://127.0.0.1:8088",
  server_key: null,
  code_end: "4VHE",
};

const done = {
  terminal_id: "T-000001",
  site: "jongno-cc",
  role: "kiosk",
  name: "종로구 보건소 키오스크",
  server: "http://127.0.0.1:8088",
  server_key: null,
  warning: null,
};

const q = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function type(id: string, text: string): void {
  const el = q<HTMLTextAreaElement>(id);
  el.value = text;
  el.dispatchEvent(new Event("input"));
}

describe("the setup screen", () => {
  it("opens instead of the kiosk while not provisioned, and goes on to it once provisioned", async () => {
    let provisioned = false;
    const { invoke, calls } = fakeInvoke({
      terminal_info: () => ({ ...unprovisioned, setup: !provisioned }),
      sync_status: () => ({ role: "kiosk", provisioned, online: null, queued: 0, in_flight: 0 }),
      read_enrollment_offer: () => read,
      provision_terminal: () => {
        provisioned = true;
        return done;
      },
      kiosk_setup: () => ({ printer: false }),
      kiosk_today: () => [],
    });
    await start(shell(), invoke);
    await flush();
    expect(q("setup-heading").textContent).toBe("단말기 설정");
    expect(document.activeElement?.id).toBe("setup-heading");
    expect(calls.some((c) => c.cmd === "kiosk_today")).toBe(false);

    type("setup-offer", OFFER);
    q("setup-read").click();
    await flush(2);
    expect(calls.find((c) => c.cmd === "read_enrollment_offer")?.args).toEqual({ text: OFFER });
    expect(q("setup-server").textContent).toBe("http://127.0.0.1:8088");
    expect(q("setup-server-key").textContent).toBe(setupLabels("ko").noKey);
    expect(q("setup-code").textContent).toBe("…4VHE");
    expect(calls.some((c) => c.cmd === "provision_terminal")).toBe(false);

    q("setup-provision").click();
    await flush(2);
    expect(calls.find((c) => c.cmd === "provision_terminal")?.args).toEqual({ text: OFFER });
    expect(q("setup-body").dataset.state).toBe("done");
    expect(q("setup-terminal-id").textContent).toBe("T-000001");
    expect(q("setup-role").textContent).toBe("가입 키오스크");

    q("setup-continue").click();
    await flush(4);
    expect(q("setup-heading")).toBeNull();
    expect(calls.some((c) => c.cmd === "kiosk_today")).toBe(true);
  });

  it("shows each refusal's message, keeps what was typed, and takes another code", async () => {
    const refusals = [
      { code: "not_an_offer", message: "등록 QR 코드의 내용이 아닙니다." },
      { code: "no_server", message: "이 QR 코드에는 서버 주소가 없습니다." },
    ];
    const { invoke, calls } = fakeInvoke({
      terminal_info: () => unprovisioned,
      sync_status: () => ({
        role: "kiosk",
        provisioned: false,
        online: null,
        queued: 0,
        in_flight: 0,
      }),
      read_enrollment_offer: () => {
        const refusal = refusals.shift();
        if (refusal) throw refusal;
        return read;
      },
      provision_terminal: () => {
        throw { code: "server_unreachable", message: "중앙 서버에 연결할 수 없습니다." };
      },
    });
    await start(shell(), invoke);
    await flush();
    for (const [text, code] of [
      ["PP1:ABCDEF", "not_an_offer"],
      ['{"palpal_enroll":1,"code":"X"}', "no_server"],
    ]) {
      type("setup-offer", text ?? "");
      q("setup-read").click();
      await flush(2);
      expect(q("error-code").textContent).toBe(code);
      expect(q<HTMLTextAreaElement>("setup-offer").value).toBe(text);
      expect(q("setup-body").dataset.state).toBe("refused");
    }
    type("setup-offer", OFFER);
    q("setup-read").click();
    await flush(2);
    q("setup-provision").click();
    await flush(2);
    expect(q("error-code").textContent).toBe("server_unreachable");
    expect(q("setup-note").textContent).toContain("연결할 수 없습니다");
    // Nothing provisioned: the same offer may be tried again, or another read.
    expect(q<HTMLButtonElement>("setup-provision").disabled).toBe(false);
    q("setup-cancel").click();
    expect(q<HTMLTextAreaElement>("setup-offer").value).toBe(OFFER);
    expect(calls.filter((c) => c.cmd === "provision_terminal")).toHaveLength(1);
  });

  it("reads a code from the keyboard-wedge scanner or the camera", async () => {
    document.body.innerHTML = `<main id="app"></main>`;
    const { invoke, calls } = fakeInvoke({ read_enrollment_offer: () => read });
    const setup = renderSetup(q("app"), {
      invoke,
      lang: "en",
      media: undefined,
      decode: async () => null,
      onDone: () => undefined,
    });
    expect(q("setup-heading").textContent).toBe("Terminal setup");
    // A scanner types a burst a few milliseconds apart, ended by Enter.
    let at = 1000;
    for (const k of [...OFFER, "Enter"]) {
      const ev = new KeyboardEvent("keydown", { key: k, bubbles: true, cancelable: true });
      at += 5;
      Object.defineProperty(ev, "timeStamp", { value: at });
      document.dispatchEvent(ev);
    }
    await flush(2);
    expect(calls.filter((c) => c.cmd === "read_enrollment_offer").map((c) => c.args)).toEqual([
      { text: OFFER },
    ]);
    expect(q("setup-server").textContent).toBe(read.server);
    // The camera hands its text to the same path.
    setup.scanned(OFFER);
    await flush(2);
    expect(calls.filter((c) => c.cmd === "read_enrollment_offer")).toHaveLength(2);
  });
});
