// What the screen tests share: a stand-in for the Rust side, the page's shell, and a way to
// let pending promises and timers run.

import type { Shell } from "./app";
import type { Invoke } from "./ipc";

export interface Call {
  cmd: string;
  args: Record<string, unknown> | undefined;
}

export type Answers = Record<string, (args?: Record<string, unknown>) => unknown>;

/** A stand-in for the Rust side that answers from a table and records every call. */
export function fakeInvoke(answers: Answers): { invoke: Invoke; calls: Call[] } {
  const calls: Call[] = [];
  const invoke = (async (cmd: string, args?: Record<string, unknown>) => {
    calls.push({ cmd, args });
    const answer = answers[cmd];
    if (!answer) throw { code: "internal", message: `no answer for ${cmd}` };
    return answer(args);
  }) as Invoke;
  return { invoke, calls };
}

/** The page's shell as `index.html` has it, fresh. */
export function shell(): Shell {
  document.body.innerHTML = `<div id="title"></div><div id="site"></div>
    <button id="zoom"></button><button id="lang-toggle"></button><main id="app"></main>`;
  const get = (id: string) => document.getElementById(id) as HTMLElement;
  return {
    app: get("app"),
    site: get("site"),
    langToggle: get("lang-toggle") as HTMLButtonElement,
    zoom: get("zoom") as HTMLButtonElement,
    title: get("title"),
  };
}

/** Lets `rounds` turns of pending promises and zero-delay timers run. */
export async function flush(rounds = 1): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setTimeout(r, 0));
}
