// The setup screen of a terminal not yet provisioned: it reads the enrollment QR code the
// operator console's Terminals page shows (camera, keyboard-wedge scanner, or its text pasted),
// shows what it will do (`read_enrollment_offer`: the server and the key it pins), and
// provisions the terminal with it (`provision_terminal`). Rust checks and decides everything;
// a refusal shows its message and the screen stays as it was, ready for another code.

import { api } from "./api";
import type { OfferRead } from "./bindings/OfferRead";
import type { Provisioned } from "./bindings/Provisioned";
import { cameraScanner, type DecodeFrame } from "./camera";
import { focusOn, h, messageBox } from "./dom";
import type { Lang } from "./i18n";
import { type Invoke, toCommandError } from "./ipc";
import { listenForScans } from "./redeem";
import type { RedeemLabels } from "./redeem-i18n";
import { errorBox } from "./watch";

export type { OfferRead, Provisioned };

const setupKo = {
  heading: "단말기 설정",
  intro:
    "이 단말기는 아직 중앙 서버에 등록되지 않았습니다. 운영 콘솔의 '단말기' 화면에서 이 단말기를 추가하면 나오는 등록 QR 코드를 카메라나 바코드 스캐너로 읽어 주세요.",
  offer: "등록 QR 코드의 내용 (스캐너가 없으면 붙여 넣기)",
  read: "확인",
  willDo: "이 서버에 등록합니다. 맞는지 확인해 주세요.",
  server: "서버 주소",
  serverKey: "고정할 서버 키",
  noKey: "없음 (이 컴퓨터의 서버)",
  code: "등록 코드 끝자리",
  provision: "이 서버에 등록하기",
  provisioning: "등록하는 중입니다. 잠시 기다려 주세요.",
  cancel: "다른 코드 읽기",
  done: "등록되었습니다.",
  terminalId: "단말기 번호",
  site: "지점",
  role: "역할",
  roles: { kiosk: "가입 키오스크", counter: "매장 단말기" } as Record<string, string>,
  start: "시작하기",
  camera: {
    start: "카메라로 등록 코드 읽기",
    stop: "카메라 끄기",
    starting: "카메라를 켜는 중입니다. 잠시 기다려 주세요.",
    looking: (frames: number) =>
      `QR 코드를 찾는 중입니다. 운영 콘솔의 등록 QR 코드를 카메라 앞에 대 주세요. (화면 ${frames}장 확인)`,
    denied:
      "카메라를 쓸 수 없습니다(사용 권한이 없습니다). 바코드 스캐너로 읽거나 코드의 내용을 붙여 넣어 주세요.",
    unavailable:
      "카메라를 쓸 수 없습니다(카메라가 없거나 다른 프로그램이 쓰는 중입니다). 바코드 스캐너로 읽거나 코드의 내용을 붙여 넣어 주세요.",
  } satisfies RedeemLabels["camera"],
};

export type SetupLabels = typeof setupKo;

const setupEn: SetupLabels = {
  heading: "Terminal setup",
  intro:
    "This terminal is not provisioned with the central server yet. Add it on the operator console's Terminals page, then read the enrollment QR code shown there with the camera or the barcode scanner.",
  offer: "What the enrollment QR code holds (paste it if there is no scanner)",
  read: "Check",
  willDo: "The terminal will be provisioned with this server. Check that it is right.",
  server: "Server address",
  serverKey: "Server key to pin",
  noKey: "None (a server on this machine)",
  code: "Code ends with",
  provision: "Provision with this server",
  provisioning: "Provisioning. Please wait.",
  cancel: "Read another code",
  done: "Provisioned.",
  terminalId: "Terminal",
  site: "Site",
  role: "Role",
  roles: { kiosk: "Sign-up kiosk", counter: "Counter" },
  start: "Start",
  camera: {
    start: "Read the code with the camera",
    stop: "Stop the camera",
    starting: "Starting the camera. Please wait.",
    looking: (frames: number) =>
      `Looking for a QR code. Hold the console's enrollment QR code in front of the camera. (${frames} frames checked)`,
    denied:
      "The camera cannot be used (no permission). Read the code with the barcode scanner or paste its text.",
    unavailable:
      "The camera cannot be used (none found, or another program is using it). Read the code with the barcode scanner or paste its text.",
  },
};

export function setupLabels(lang: Lang): SetupLabels {
  return lang === "en" ? setupEn : setupKo;
}

export interface SetupDeps {
  invoke: Invoke;
  lang: Lang;
  /** `navigator.mediaDevices`, or undefined where there is no camera. */
  media: MediaDevices | undefined;
  decode: DecodeFrame;
  /** Called once the terminal is provisioned and "start" is pressed. */
  onDone: () => void;
}

let stopScans: (() => void) | undefined;

/** Shows the setup screen in `root`; a wedge scan anywhere on the page reads a code. */
export function renderSetup(
  root: HTMLElement,
  deps: SetupDeps,
): { scanned: (text: string) => void } {
  const l = setupLabels(deps.lang);
  const calls = api(deps.invoke);
  const heading = h("h1", { id: "setup-heading" }, l.heading);
  const offer = h("textarea", { id: "setup-offer", rows: "3", spellcheck: "false" });
  const read = h("button", { type: "button", id: "setup-read" }, l.read);
  const note = h("div", { id: "setup-note" });
  const body = h("div", { id: "setup-body" });
  let busy = false;

  const camera = cameraScanner({
    media: deps.media,
    decode: deps.decode,
    labels: l.camera,
    onText: (text) => scanned(text),
  });

  function refused(e: unknown): void {
    busy = false;
    const err = toCommandError(e);
    note.replaceChildren(errorBox(err));
    body.dataset.state = "refused";
    focusOn(note.querySelector<HTMLElement>(".message"));
  }

  function scanned(text: string): void {
    offer.value = text;
    void check(text);
  }

  async function check(text: string): Promise<void> {
    if (busy) return;
    busy = true;
    camera.stop();
    note.replaceChildren();
    try {
      const what = await calls.readEnrollmentOffer({ text });
      busy = false;
      confirm(text, what);
    } catch (e) {
      refused(e);
    }
  }

  function row(label: string, value: string, id: string): HTMLElement[] {
    return [h("dt", {}, label), h("dd", { id }, value)];
  }

  function confirm(text: string, what: OfferRead): void {
    const go = h(
      "button",
      { type: "button", id: "setup-provision", class: "primary" },
      l.provision,
    );
    const back = h("button", { type: "button", id: "setup-cancel" }, l.cancel);
    const willDo = h("p", { id: "setup-will-do" }, l.willDo);
    body.dataset.state = "confirm";
    body.replaceChildren(
      willDo,
      h(
        "dl",
        { class: "setup-offer" },
        ...row(l.server, what.server, "setup-server"),
        ...row(l.serverKey, what.server_key ?? l.noKey, "setup-server-key"),
        ...row(l.code, `…${what.code_end}`, "setup-code"),
      ),
      h("div", { class: "actions" }, go, back),
    );
    back.addEventListener("click", () => idle());
    go.addEventListener("click", () => void provision(text, go));
    focusOn(willDo);
  }

  async function provision(text: string, go: HTMLButtonElement): Promise<void> {
    if (busy) return;
    busy = true;
    go.disabled = true;
    note.replaceChildren(h("p", { role: "status" }, l.provisioning));
    try {
      const done = await calls.provisionTerminal({ text });
      busy = false;
      finished(done);
    } catch (e) {
      go.disabled = false;
      refused(e);
    }
  }

  function finished(done: Provisioned): void {
    stopScans?.();
    stopScans = undefined;
    const start = h("button", { type: "button", id: "setup-continue", class: "primary" }, l.start);
    body.dataset.state = "done";
    note.replaceChildren();
    const box = messageBox(
      "done",
      h("p", {}, l.done),
      h(
        "dl",
        { class: "setup-offer" },
        ...row(l.terminalId, done.terminal_id, "setup-terminal-id"),
        ...row(l.site, done.site, "setup-site"),
        ...row(l.role, l.roles[done.role] ?? done.role, "setup-role"),
        ...row(l.server, done.server, "setup-server"),
      ),
    );
    body.replaceChildren(
      box,
      ...(done.warning
        ? [messageBox("error", h("span", { id: "setup-warning" }, done.warning))]
        : []),
      h("div", { class: "actions" }, start),
    );
    start.addEventListener("click", () => deps.onDone());
    focusOn(box);
  }

  function idle(): void {
    body.dataset.state = "reading";
    body.replaceChildren(
      h("p", { id: "setup-intro" }, l.intro),
      camera.element,
      h("label", { for: "setup-offer" }, l.offer),
      offer,
      h("div", { class: "actions" }, read),
    );
    focusOn(heading);
  }

  read.addEventListener("click", () => void check(offer.value));
  root.replaceChildren(heading, note, body);
  idle();
  stopScans?.();
  const stopWedge = listenForScans(root.ownerDocument, scanned);
  stopScans = () => {
    stopWedge();
    camera.stop();
  };
  return { scanned };
}

/** Stops listening for scans (another screen took over). */
export function stopSetup(): void {
  stopScans?.();
  stopScans = undefined;
}
