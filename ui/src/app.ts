// Chooses the screen for this terminal's role (or its setup, while it is not provisioned) and
// keeps the header current. What waits to be sent is shown once, in the status bar
// (`status.ts`), refreshed as soon as something queues.

import { api } from "./api";
import { decodeFrameWith } from "./camera";
import { renderCounter } from "./counter";
import { h, messageBox } from "./dom";
import { type Lang, labels } from "./i18n";
import { type Invoke, type ScreenSizes, type TerminalInfo, toCommandError } from "./ipc";
import { renderKiosk } from "./kiosk";
import { renderSetup, stopSetup } from "./setup";
import { startStatusBar } from "./status";

export interface Shell {
  app: HTMLElement;
  site: HTMLElement;
  langToggle: HTMLButtonElement;
  zoom: HTMLButtonElement;
  title: HTMLElement;
}

/** The zoom steps the "larger text" button cycles through: everything up to 200%. */
export const ZOOM_STEPS = [1, 1.5, 2] as const;

/** Sizes text and touch targets for the configured screen, in millimetres turned into pixels. */
export function applySizes(root: HTMLElement, sizes: ScreenSizes | null | undefined): void {
  if (!sizes) return;
  root.style.setProperty("--base", `${sizes.body_font_px}px`);
  root.style.setProperty("--target", `${sizes.min_target_px}px`);
}

export async function start(shell: Shell, invoke: Invoke): Promise<void> {
  let lang: Lang = "ko";
  let zoomStep = 0;

  function showZoom(): void {
    const z = ZOOM_STEPS[zoomStep] ?? 1;
    document.documentElement.style.setProperty("--zoom", String(z));
    document.documentElement.dataset.zoom = String(z);
    shell.zoom.textContent = `${labels(lang).zoom} ${Math.round(z * 100)}%`;
    shell.zoom.dataset.zoom = String(z);
  }
  shell.zoom.addEventListener("click", () => {
    zoomStep = (zoomStep + 1) % ZOOM_STEPS.length;
    showZoom();
  });

  async function refreshHeader(): Promise<TerminalInfo | null> {
    const t = labels(lang);
    try {
      const info = await api(invoke).terminalInfo();
      lang = info.language;
      const tl = labels(lang);
      shell.site.textContent = `${info.site_name} · ${info.role === "kiosk" ? tl.roleKiosk : tl.roleCounter}`;
      applySizes(document.documentElement, info.sizes);
      return info;
    } catch (e) {
      const err = toCommandError(e);
      shell.app.replaceChildren(
        h("h1", {}, t.startFailed),
        messageBox("error", h("span", { id: "error-code", hidden: true }, err.code), err.message),
      );
      return null;
    }
  }

  // Set once the bar has started (after the first render).
  let refreshStatus: () => Promise<void> = async () => undefined;
  const onQueued = () => void refreshStatus();

  async function render(): Promise<void> {
    const info = await refreshHeader();
    const t = labels(lang);
    document.documentElement.lang = lang;
    shell.title.textContent = t.title;
    shell.langToggle.textContent = t.switchTo;
    shell.langToggle.lang = lang === "ko" ? "en" : "ko";
    showZoom();
    if (!info) return;
    if (info.setup) {
      renderSetup(shell.app, {
        invoke,
        lang,
        media: globalThis.navigator?.mediaDevices,
        decode: decodeFrameWith(invoke),
        onDone: () => void render().then(() => refreshStatus()),
      });
      return;
    }
    stopSetup();
    if (info.role === "kiosk") {
      renderKiosk(shell.app, { invoke, t, onQueued });
    } else {
      renderCounter(shell.app, { invoke, t, onQueued });
    }
  }

  shell.langToggle.addEventListener("click", async () => {
    const next: Lang = lang === "ko" ? "en" : "ko";
    try {
      lang = await api(invoke).setLanguage({ language: next });
    } catch {
      lang = next;
    }
    await render();
    await refreshStatus();
  });

  await render();
  refreshStatus = startStatusBar(invoke, () => lang, shell.app);
}
