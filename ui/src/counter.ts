// The counter's first screen: find a member and show their week, as Rust computed it.

import { api } from "./api";
import type { WatchSynced } from "./bindings/WatchSynced";
import { decodeFrameWith } from "./camera";
import { h, messageBox } from "./dom";
import { barHeights, grouped } from "./format";
import type { Labels } from "./i18n";
import { type Invoke, type MemberView, toCommandError } from "./ipc";
import { listenForScans, redeemPanel, settlementPanel } from "./redeem";
import { errorBox, warningLines, watchPicker } from "./watch";

export type { WatchSynced };

export interface CounterDeps {
  invoke: Invoke;
  t: Labels;
  /** Called after something was queued, so the header's count can refresh. */
  onQueued?: () => void;
}

export function renderWeek(view: MemberView, t: Labels): HTMLElement {
  const heights = barHeights(
    view.week.days.map((d) => d.steps),
    view.goal,
  );
  return h(
    "div",
    { id: "member", "data-member": view.member_no },
    h("h2", { id: "member-name" }, `${view.name} (${view.member_no}) · ${t.age(view.age)}`),
    h(
      "div",
      { class: "summary" },
      h(
        "div",
        {},
        `${t.points}: `,
        h("strong", { id: "week-points" }, grouped(view.week.total_points)),
        ` ${t.pointsUnit}`,
      ),
      h(
        "div",
        {},
        `${t.steps}: `,
        h("strong", { id: "week-steps" }, grouped(view.week.total_steps)),
        ` ${t.stepsUnit}`,
      ),
      h(
        "div",
        {},
        `${t.yearPoints}: `,
        h("strong", { id: "year-points" }, grouped(view.year_points)),
        ` ${t.pointsUnit}`,
      ),
    ),
    view.heart
      ? h(
          "div",
          { class: "summary heart" },
          h(
            "div",
            {},
            `${t.mvpa}: `,
            h("strong", { id: "mvpa" }, grouped(view.heart.mvpa_minutes)),
            ` ${t.minutes}`,
          ),
          h(
            "div",
            {},
            `${t.restingHr}: `,
            h(
              "strong",
              { id: "resting-hr" },
              view.heart.resting_bpm === null ? "–" : String(view.heart.resting_bpm),
            ),
            ` ${t.bpm}`,
          ),
        )
      : null,
    h("p", { class: "hint" }, t.goal(view.goal)),
    h(
      "div",
      { class: "week", role: "list" },
      ...view.week.days.map((d, i) => {
        const fill = h("div", {
          class: d.steps >= view.goal ? "bar-fill met" : "bar-fill",
          style: `height:${heights[i] ?? 0}%`,
        });
        return h(
          "div",
          { class: "day", role: "listitem", "data-day": d.day },
          h("div", { class: "bar-track" }, fill),
          h("div", { class: "label" }, t.weekdays[i] ?? ""),
          h("div", { class: "steps" }, d.future ? "–" : grouped(d.steps)),
          h("div", { class: "steps" }, d.points > 0 ? `+${grouped(d.points)}${t.pointsUnit}` : ""),
          d.steps >= view.goal && !d.future ? h("div", { class: "met-mark" }, t.goalMet) : null,
        );
      }),
    ),
  );
}

export function renderCounter(root: HTMLElement, deps: CounterDeps): void {
  const { t, invoke } = deps;
  const memberNo = h("input", { id: "member-no", autocomplete: "off" });
  const out = h("div", { id: "result" });
  const find = h("button", { type: "button", id: "find", class: "primary" }, t.find);

  async function lookUp(): Promise<void> {
    find.disabled = true;
    try {
      const view = await api(invoke).findMember({ memberNo: memberNo.value });
      showMember(view);
    } catch (e) {
      out.replaceChildren(errorBox(toCommandError(e)));
    } finally {
      find.disabled = false;
    }
  }
  /**
   * The member's week with a "sync watch" step beside it. `token` is the member's code when
   * they were found by a scan: a watch new at this counter is paired only with it.
   */
  function showMember(view: MemberView, token?: string): void {
    let week = renderWeek(view, t);
    const note = h("div", { id: "sync-note" });
    const syncing = h("div", { id: "sync-area", hidden: true });
    const start = h("button", { type: "button", id: "sync-watch", class: "primary" }, t.syncWatch);
    start.addEventListener("click", () => {
      start.hidden = true;
      syncing.hidden = false;
      picker.scan.click();
    });
    const picker = watchPicker({
      invoke,
      t,
      onPick: async (w) => {
        const done = await api(invoke).syncWatch({
          memberNo: view.member_no,
          address: w.address,
          token: token ?? null,
        });
        const fresh = renderWeek(done.member, t);
        week.replaceWith(fresh);
        week = fresh;
        // The outcome goes above the week, where the clerk and the member look next.
        note.replaceChildren(
          messageBox(
            "done",
            h("p", { id: "sync-result" }, t.synced(done.serial, done.records, done.step_reports)),
            ...warningLines(done.warnings),
          ),
        );
        picker.status.replaceChildren();
        syncing.hidden = true;
        start.hidden = false;
        note.scrollIntoView?.({ block: "start" });
        deps.onQueued?.();
      },
    });
    syncing.append(picker.section);
    out.replaceChildren(note, week, h("div", { class: "actions" }, start), syncing);
  }

  find.addEventListener("click", () => void lookUp());
  memberNo.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") void lookUp();
  });

  // A code read by the keyboard-wedge scanner or by the camera: one path to the redemption.
  function scanned(text: string): void {
    void redeem.scan(text).then(() => redeem.section.scrollIntoView?.({ block: "start" }));
  }
  const redeem = redeemPanel({
    invoke,
    t,
    showMember,
    onQueued: deps.onQueued,
    camera: {
      media: globalThis.navigator?.mediaDevices,
      decode: decodeFrameWith(invoke),
      onText: scanned,
    },
  });
  root.replaceChildren(
    h("h1", {}, t.counterHeading),
    h("label", { for: "member-no" }, t.memberNo),
    h("div", { class: "actions" }, memberNo, find),
    redeem.section,
    out,
    settlementPanel({ invoke, t, onQueued: deps.onQueued }),
  );
  // A keyboard-wedge scan anywhere on the counter's screen goes to the redemption panel. The
  // screen is rebuilt on a language switch: the previous listener and camera go with it.
  stopScans?.();
  const stopWedge = listenForScans(root.ownerDocument, scanned);
  stopScans = () => {
    stopWedge();
    redeem.stop();
  };
  memberNo.focus();
}

let stopScans: (() => void) | undefined;
