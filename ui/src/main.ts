import { invoke } from "@tauri-apps/api/core";
import { type Shell, start } from "./app";

function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from index.html`);
  return el as T;
}

const shell: Shell = {
  app: byId("app"),
  site: byId("site"),
  langToggle: byId<HTMLButtonElement>("lang-toggle"),
  zoom: byId<HTMLButtonElement>("zoom"),
  title: byId("title"),
};

void start(shell, invoke);
