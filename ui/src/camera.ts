// Scanning with the counter's camera, where one is present. The preview is drawn onto a canvas
// a few times a second, made grayscale and sent to Rust (`decode_frame`), which looks for a QR
// code; the first text found goes to the same place a keyboard-wedge scan goes. This screen
// decodes nothing itself and decides nothing about the code.

import { h, messageBox } from "./dom";
import { type Invoke, toCommandError } from "./ipc";
import type { RedeemLabels } from "./redeem-i18n";
import { errorBox } from "./watch";

/** The widest frame sent to Rust: enough for a phone's code held at the counter. */
export const FRAME_WIDTH = 640;
/** Time from one frame to the next (ms). */
export const FRAME_INTERVAL_MS = 200;
/** Width and height, each a big-endian u32, before the pixels (`camera::HEADER_LEN`). */
export const HEADER_LEN = 8;

/** `decode_frame`: the text of the QR code in the frame, or null. */
export type DecodeFrame = (body: Uint8Array) => Promise<string | null>;

/** Why the camera could not start. */
export type CameraFailure = "denied" | "unavailable";

export type CameraState =
  | { kind: "off" }
  | { kind: "starting" }
  | { kind: "scanning"; frames: number }
  | { kind: "failed"; failure: CameraFailure };

/** The frame size for a `width` x `height` video: at most `maxWidth` wide, same proportions. */
export function frameSize(
  width: number,
  height: number,
  maxWidth = FRAME_WIDTH,
): { width: number; height: number } | null {
  if (!(width > 0 && height > 0)) return null;
  const scale = Math.min(1, maxWidth / width);
  return {
    width: Math.max(1, Math.round(width * scale)),
    height: Math.max(1, Math.round(height * scale)),
  };
}

/**
 * RGBA pixels (a canvas's `getImageData`) as `decode_frame`'s body: the header, then one byte
 * of luma a pixel (BT.601 weights, in integers).
 */
export function grayFrame(
  rgba: Uint8ClampedArray | Uint8Array,
  width: number,
  height: number,
): Uint8Array {
  const n = width * height;
  if (rgba.length < n * 4) throw new Error(`${rgba.length} bytes are not ${width}x${height} RGBA`);
  const body = new Uint8Array(HEADER_LEN + n);
  const header = new DataView(body.buffer);
  header.setUint32(0, width);
  header.setUint32(4, height);
  for (let i = 0, p = 0; i < n; i++, p += 4) {
    body[HEADER_LEN + i] =
      (77 * (rgba[p] ?? 0) + 150 * (rgba[p + 1] ?? 0) + 29 * (rgba[p + 2] ?? 0)) >> 8;
  }
  return body;
}

/** What `getUserMedia`'s refusal means for the clerk. */
export function failureOf(e: unknown): CameraFailure {
  const name = (e as { name?: unknown } | null)?.name;
  return name === "NotAllowedError" || name === "SecurityError" ? "denied" : "unavailable";
}

/** Whether this webview can use a camera and one is connected. */
export async function hasCamera(media: MediaDevices | undefined): Promise<boolean> {
  if (typeof media?.getUserMedia !== "function" || typeof media.enumerateDevices !== "function") {
    return false;
  }
  try {
    const devices = await media.enumerateDevices();
    return devices.some((d) => d.kind === "videoinput");
  } catch {
    return false;
  }
}

/** The part of the video a frame takes (`sx, sy, sw, sh`) and the frame's size. */
export interface FrameRect {
  sx: number;
  sy: number;
  sw: number;
  sh: number;
  width: number;
  height: number;
}

/**
 * What frame number `index` takes from a `width` x `height` video. Even frames: the whole
 * picture, at most `maxWidth` wide. Odd frames, when the video is wider than that: its middle
 * at full resolution, so that a code held up small in front of the camera gets twice the
 * pixels a module (the decoder wants about 3 or more).
 */
export function frameRect(
  width: number,
  height: number,
  index: number,
  maxWidth = FRAME_WIDTH,
): FrameRect | null {
  const whole = frameSize(width, height, maxWidth);
  if (!whole) return null;
  if (index % 2 === 0 || width <= maxWidth) {
    return { sx: 0, sy: 0, sw: width, sh: height, ...whole };
  }
  const sw = maxWidth;
  const sh = Math.min(height, Math.round((maxWidth * 3) / 4));
  const sx = Math.floor((width - sw) / 2);
  const sy = Math.floor((height - sh) / 2);
  return { sx, sy, sw, sh, width: sw, height: sh };
}

/** Draws the video onto a canvas (see `frameRect`) and returns the frame; null before a picture. */
export function canvasGrabber(): (video: HTMLVideoElement) => Uint8Array | null {
  const canvas = document.createElement("canvas");
  let ctx: CanvasRenderingContext2D | null = null;
  let index = 0;
  return (video) => {
    const r = frameRect(video.videoWidth, video.videoHeight, index);
    if (!r) return null;
    index++;
    if (canvas.width !== r.width || canvas.height !== r.height) {
      canvas.width = r.width;
      canvas.height = r.height;
      ctx = null;
    }
    ctx ??= canvas.getContext("2d", { willReadFrequently: true });
    if (!ctx) return null;
    ctx.drawImage(video, r.sx, r.sy, r.sw, r.sh, 0, 0, r.width, r.height);
    const { data } = ctx.getImageData(0, 0, r.width, r.height);
    return grayFrame(data, r.width, r.height);
  };
}

export interface CameraDeps {
  /** `navigator.mediaDevices`: undefined where the webview offers no cameras. */
  media: MediaDevices | undefined;
  decode: DecodeFrame;
  labels: RedeemLabels["camera"];
  /** Called once with the text of the code found; the camera is off by then. */
  onText: (text: string) => void;
  /** Shows the stream in the preview and plays it (a test replaces it). */
  attach?: (video: HTMLVideoElement, stream: MediaStream) => Promise<void>;
  /** Takes the frame shown in the preview (a test replaces it). */
  grab?: (video: HTMLVideoElement) => Uint8Array | null;
  /** Waits between frames (a test replaces it). */
  sleep?: (ms: number) => Promise<void>;
}

async function attachStream(video: HTMLVideoElement, stream: MediaStream): Promise<void> {
  video.muted = true;
  video.playsInline = true;
  video.srcObject = stream;
  await video.play();
}

const wait = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The "scan with camera" button and, once pressed, the preview, what it is doing, and a stop
 * button. The button shows only when a camera is present. `stop()` turns the camera off (a
 * wedge scan, another screen); `state()` is for tests and the screen.
 */
export function cameraScanner(deps: CameraDeps): {
  element: HTMLElement;
  stop: () => void;
  state: () => CameraState;
  /** Settles once it is known whether a camera is present (the button then shows or not). */
  ready: Promise<boolean>;
} {
  const l = deps.labels;
  const attach = deps.attach ?? attachStream;
  const grab = deps.grab ?? canvasGrabber();
  const sleep = deps.sleep ?? wait;
  const start = h("button", { type: "button", id: "camera-start", class: "camera-start" }, l.start);
  const stopBtn = h("button", { type: "button", id: "camera-stop" }, l.stop);
  const video = h("video", { id: "camera-preview", class: "camera-preview", muted: true });
  const status = h("p", { id: "camera-status", class: "hint", role: "status" });
  const view = h("div", { class: "camera-view", hidden: true }, video, status, stopBtn);
  const note = h("div", { id: "camera-note" });
  const element = h("div", { id: "camera", class: "camera", hidden: true }, start, view, note);

  let current: CameraState = { kind: "off" };
  let stream: MediaStream | null = null;
  /** Each start gets a new session; a loop whose session ended stops. */
  let session = 0;

  function show(next: CameraState): void {
    current = next;
    element.dataset.state = next.kind;
    element.dataset.frames = next.kind === "scanning" ? String(next.frames) : "";
    view.hidden = next.kind !== "starting" && next.kind !== "scanning";
    start.hidden = !view.hidden;
    if (next.kind === "starting") status.textContent = l.starting;
    if (next.kind === "scanning") status.textContent = l.looking(next.frames);
    if (next.kind === "failed") {
      note.replaceChildren(
        messageBox(
          "error",
          h("span", { id: "camera-failure", hidden: true }, next.failure),
          next.failure === "denied" ? l.denied : l.unavailable,
        ),
      );
    }
  }

  function stop(): void {
    session++;
    for (const track of stream?.getTracks() ?? []) track.stop();
    stream = null;
    video.srcObject = null;
    if (current.kind === "starting" || current.kind === "scanning") show({ kind: "off" });
  }

  async function scan(mine: number): Promise<void> {
    let frames = 0;
    while (session === mine) {
      const began = Date.now();
      const frame = grab(video);
      if (frame) {
        frames++;
        show({ kind: "scanning", frames });
        let text: string | null;
        try {
          text = await deps.decode(frame);
        } catch (e) {
          if (session !== mine) return;
          stop();
          note.replaceChildren(errorBox(toCommandError(e)));
          return;
        }
        if (session !== mine) return;
        if (text) {
          stop();
          deps.onText(text);
          return;
        }
      }
      await sleep(Math.max(0, FRAME_INTERVAL_MS - (Date.now() - began)));
    }
  }

  async function begin(): Promise<void> {
    const mine = ++session;
    note.replaceChildren();
    show({ kind: "starting" });
    try {
      const media = deps.media;
      if (!media?.getUserMedia) throw new DOMException("no camera", "NotFoundError");
      const got = await media.getUserMedia({
        video: { width: { ideal: 1280 }, height: { ideal: 720 }, facingMode: "environment" },
        audio: false,
      });
      if (session !== mine) {
        for (const track of got.getTracks()) track.stop();
        return;
      }
      stream = got;
      await attach(video, got);
    } catch (e) {
      if (session !== mine) return;
      stop();
      show({ kind: "failed", failure: failureOf(e) });
      return;
    }
    if (session !== mine) return;
    show({ kind: "scanning", frames: 0 });
    await scan(mine);
  }

  start.addEventListener("click", () => void begin());
  stopBtn.addEventListener("click", () => stop());
  show({ kind: "off" });
  const ready = hasCamera(deps.media).then((present) => {
    element.hidden = !present;
    return present;
  });
  return { element, stop, state: () => current, ready };
}

/** `decode_frame` through the app's invoke, which sends bytes as the raw body they are. */
export function decodeFrameWith(invoke: Invoke): DecodeFrame {
  // Tauri's invoke takes a Uint8Array as well as an object (`InvokeArgs`); `Invoke` names
  // only the object form the other commands use.
  const raw = invoke as unknown as <T>(cmd: string, body: Uint8Array) => Promise<T>;
  return (body) => raw<string | null>("decode_frame", body);
}
