import { describe, expect, it } from "vitest";
import {
  type CameraDeps,
  cameraScanner,
  decodeFrameWith,
  FRAME_INTERVAL_MS,
  failureOf,
  frameRect,
  frameSize,
  grayFrame,
  HEADER_LEN,
  hasCamera,
} from "./camera";
import type { Invoke } from "./ipc";
import { redeemEn, redeemKo } from "./redeem-i18n";

const flush = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
};

describe("frames", () => {
  it("are at most 640 wide, in the video's proportions", () => {
    expect(frameSize(1280, 720)).toEqual({ width: 640, height: 360 });
    expect(frameSize(1920, 1080)).toEqual({ width: 640, height: 360 });
    expect(frameSize(640, 480)).toEqual({ width: 640, height: 480 });
    expect(frameSize(320, 240)).toEqual({ width: 320, height: 240 });
    expect(frameSize(720, 1280)).toEqual({ width: 640, height: 1138 });
    // No picture yet (the video's size is 0 until its first frame).
    expect(frameSize(0, 0)).toBeNull();
    expect(frameSize(Number.NaN, 480)).toBeNull();
  });

  it("take the whole picture, then its middle at full resolution, in turn", () => {
    const whole = { sx: 0, sy: 0, sw: 1280, sh: 720, width: 640, height: 360 };
    expect(frameRect(1280, 720, 0)).toEqual(whole);
    expect(frameRect(1280, 720, 1)).toEqual({
      sx: 320,
      sy: 120,
      sw: 640,
      sh: 480,
      width: 640,
      height: 480,
    });
    expect(frameRect(1280, 720, 2)).toEqual(whole);
    // 1920x1080: the middle 640x480.
    expect(frameRect(1920, 1080, 3)).toEqual({
      sx: 640,
      sy: 300,
      sw: 640,
      sh: 480,
      width: 640,
      height: 480,
    });
    // A video no wider than a frame: always the whole of it.
    const small = { sx: 0, sy: 0, sw: 640, sh: 480, width: 640, height: 480 };
    expect(frameRect(640, 480, 0)).toEqual(small);
    expect(frameRect(640, 480, 1)).toEqual(small);
    // Wide and short: the middle is as tall as the video.
    expect(frameRect(1600, 400, 1)).toEqual({
      sx: 480,
      sy: 0,
      sw: 640,
      sh: 400,
      width: 640,
      height: 400,
    });
    expect(frameRect(0, 0, 1)).toBeNull();
  });

  it("are a header of width and height, then one byte of luma a pixel", () => {
    // 3x2: black, white, red / green, blue, mid grey (alpha ignored).
    const rgba = new Uint8ClampedArray([
      0, 0, 0, 255, 255, 255, 255, 255, 255, 0, 0, 255, 0, 255, 0, 0, 0, 0, 255, 128, 128, 128, 128,
      255,
    ]);
    const body = grayFrame(rgba, 3, 2);
    expect(body.length).toBe(HEADER_LEN + 6);
    expect([...body.slice(0, HEADER_LEN)]).toEqual([0, 0, 0, 3, 0, 0, 0, 2]);
    expect([...body.slice(HEADER_LEN)]).toEqual([0, 255, 76, 149, 28, 128]);
    const wide = grayFrame(new Uint8Array(640 * 480 * 4), 640, 480);
    expect([...wide.slice(0, HEADER_LEN)]).toEqual([0, 0, 2, 128, 0, 0, 1, 224]);
    expect(() => grayFrame(rgba, 4, 2)).toThrow();
  });

  it("go to decode_frame as the raw body", async () => {
    const calls: [string, unknown][] = [];
    const invoke = (async (cmd: string, args?: unknown) => {
      calls.push([cmd, args]);
      return "PP1:TEXT";
    }) as Invoke;
    const body = grayFrame(new Uint8Array(16), 2, 2);
    expect(await decodeFrameWith(invoke)(body)).toBe("PP1:TEXT");
    expect(calls).toEqual([["decode_frame", body]]);
    expect(calls[0]?.[1]).toBe(body);
  });
});

describe("whether there is a camera", () => {
  const media = (devices: { kind: string }[] | Error, getUserMedia = true) =>
    ({
      getUserMedia: getUserMedia ? async () => ({}) : undefined,
      enumerateDevices: async () => {
        if (devices instanceof Error) throw devices;
        return devices;
      },
    }) as unknown as MediaDevices;

  it("needs getUserMedia and a video input", async () => {
    expect(await hasCamera(undefined)).toBe(false);
    expect(await hasCamera(media([{ kind: "videoinput" }], false))).toBe(false);
    expect(await hasCamera(media([]))).toBe(false);
    expect(await hasCamera(media([{ kind: "audioinput" }, { kind: "audiooutput" }]))).toBe(false);
    expect(await hasCamera(media([{ kind: "audioinput" }, { kind: "videoinput" }]))).toBe(true);
    expect(await hasCamera(media(new Error("no")))).toBe(false);
  });

  it("tells a refusal from a missing or busy camera", () => {
    expect(failureOf(new DOMException("", "NotAllowedError"))).toBe("denied");
    expect(failureOf(new DOMException("", "SecurityError"))).toBe("denied");
    expect(failureOf(new DOMException("", "NotFoundError"))).toBe("unavailable");
    expect(failureOf(new DOMException("", "NotReadableError"))).toBe("unavailable");
    expect(failureOf(new DOMException("", "OverconstrainedError"))).toBe("unavailable");
    expect(failureOf("weird")).toBe("unavailable");
    expect(failureOf(null)).toBe("unavailable");
  });
});

/** A camera whose frames, decodes and waits the test controls. */
function rig(opts: {
  devices?: string[];
  refuse?: string;
  /** What each frame decodes to; an object is an error the command answers. */
  answers?: (string | null | { code: string; message: string })[];
}) {
  const stopped: string[] = [];
  const decoded: Uint8Array[] = [];
  const texts: string[] = [];
  const waits: (() => void)[] = [];
  const answers = [...(opts.answers ?? [])];
  const media = {
    getUserMedia: async () => {
      if (opts.refuse) throw new DOMException("refused", opts.refuse);
      return { getTracks: () => [{ stop: () => stopped.push("video") }] };
    },
    enumerateDevices: async () => (opts.devices ?? ["videoinput"]).map((kind) => ({ kind })),
  } as unknown as MediaDevices;
  let n = 0;
  const deps: CameraDeps = {
    media,
    labels: redeemKo.camera,
    onText: (t) => texts.push(t),
    decode: async (body) => {
      decoded.push(body);
      const a = answers.shift() ?? null;
      if (a !== null && typeof a === "object") throw a;
      return a;
    },
    attach: async () => {},
    grab: () => grayFrame(new Uint8Array(4 * 4 * 4).fill(++n), 4, 4),
    sleep: (ms) => {
      expect(ms).toBeLessThanOrEqual(FRAME_INTERVAL_MS);
      return new Promise<void>((r) => waits.push(() => r()));
    },
  };
  const cam = cameraScanner(deps);
  document.body.replaceChildren(cam.element);
  const q = <T extends HTMLElement>(sel: string) => cam.element.querySelector(sel) as T;
  const tick = async () => {
    waits.shift()?.();
    await flush();
  };
  return { cam, stopped, decoded, texts, tick, q, waits };
}

describe("the camera scanner", () => {
  it("shows no button without a camera, and no error", async () => {
    const { cam } = rig({ devices: ["audioinput"] });
    expect(await cam.ready).toBe(false);
    expect(cam.element.hidden).toBe(true);
    expect(cam.element.querySelector(".message")).toBeNull();
    const none = cameraScanner({
      media: undefined,
      decode: async () => null,
      labels: redeemKo.camera,
      onText: () => {},
    });
    expect(await none.ready).toBe(false);
    expect(none.element.hidden).toBe(true);
  });

  it("scans frame after frame until a code is found, then stops and hands it on", async () => {
    const { cam, q, decoded, texts, stopped, tick } = rig({ answers: [null, null, "PP1:FOUND"] });
    expect(await cam.ready).toBe(true);
    expect(cam.element.hidden).toBe(false);
    const start = q<HTMLButtonElement>("#camera-start");
    expect(start.textContent).toBe("카메라로 스캔");
    expect(cam.state()).toEqual({ kind: "off" });

    start.click();
    expect(cam.state()).toEqual({ kind: "starting" });
    expect(q("#camera-status").textContent).toBe(redeemKo.camera.starting);
    await flush();
    expect(cam.state()).toEqual({ kind: "scanning", frames: 1 });
    expect(start.hidden).toBe(true);
    expect(q("#camera-preview").closest("[hidden]")).toBeNull();
    expect(q("#camera-status").textContent).toBe(redeemKo.camera.looking(1));
    expect(cam.element.dataset.frames).toBe("1");
    expect(decoded.length).toBe(1);
    expect([...(decoded[0] ?? []).slice(0, HEADER_LEN)]).toEqual([0, 0, 0, 4, 0, 0, 0, 4]);

    await tick();
    expect(cam.state()).toEqual({ kind: "scanning", frames: 2 });
    expect(texts).toEqual([]);
    await tick();
    expect(decoded.length).toBe(3);
    expect(texts).toEqual(["PP1:FOUND"]);
    expect(stopped).toEqual(["video"]);
    expect(cam.state()).toEqual({ kind: "off" });
    expect(start.hidden).toBe(false);
  });

  it("stops when the clerk presses stop, and sends no more frames", async () => {
    const { cam, q, decoded, texts, stopped, tick, waits } = rig({});
    await cam.ready;
    q<HTMLButtonElement>("#camera-start").click();
    await flush();
    await tick();
    expect(cam.state()).toEqual({ kind: "scanning", frames: 2 });
    q<HTMLButtonElement>("#camera-stop").click();
    expect(cam.state()).toEqual({ kind: "off" });
    expect(stopped).toEqual(["video"]);
    await tick();
    await tick();
    expect(decoded.length).toBe(2);
    expect(waits.length).toBe(0);
    expect(texts).toEqual([]);
    // And starts again.
    q<HTMLButtonElement>("#camera-start").click();
    await flush();
    expect(cam.state()).toEqual({ kind: "scanning", frames: 1 });
    cam.stop();
    expect(stopped).toEqual(["video", "video"]);
  });

  it("says what to do when the camera is refused or missing", async () => {
    for (const [refuse, failure, text] of [
      ["NotAllowedError", "denied", redeemKo.camera.denied],
      ["NotFoundError", "unavailable", redeemKo.camera.unavailable],
      ["NotReadableError", "unavailable", redeemKo.camera.unavailable],
    ] as const) {
      const { cam, q, decoded } = rig({ refuse });
      await cam.ready;
      q<HTMLButtonElement>("#camera-start").click();
      await flush();
      expect(cam.state()).toEqual({ kind: "failed", failure });
      expect(q(".message.error").textContent).toBe(`${failure}${text}`);
      expect(q("#camera-start").hidden).toBe(false);
      expect(decoded.length).toBe(0);
    }
    expect(redeemKo.camera.denied).toContain("바코드 스캐너로 찍어 주세요");
    expect(redeemEn.camera.denied).toContain("barcode scanner");
  });

  it("stops and shows the command's error when a frame is refused", async () => {
    const { cam, q, stopped } = rig({
      answers: [{ code: "invalid_input", message: "다시 시작하세요" }],
    });
    await cam.ready;
    q<HTMLButtonElement>("#camera-start").click();
    await flush();
    expect(cam.state()).toEqual({ kind: "off" });
    expect(stopped).toEqual(["video"]);
    expect(q("#error-code").textContent).toBe("invalid_input");
    expect(q(".message.error").textContent).toContain("다시 시작하세요");
  });
});
