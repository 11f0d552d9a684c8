// The counter's first screen: find a member and show their week, as Rust computed it.

import { h, messageBox } from "./dom";
import { barHeights, grouped } from "./format";
import type { Labels } from "./i18n";
import { type Invoke, type MemberView, toCommandError } from "./ipc";

export interface CounterDeps {
  invoke: Invoke;
  t: Labels;
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
      const view = await invoke<MemberView>("find_member", { memberNo: memberNo.value });
      out.replaceChildren(renderWeek(view, t));
    } catch (e) {
      const err = toCommandError(e);
      out.replaceChildren(
        messageBox("error", h("span", { id: "error-code", hidden: true }, err.code), err.message),
      );
    } finally {
      find.disabled = false;
    }
  }
  find.addEventListener("click", () => void lookUp());
  memberNo.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") void lookUp();
  });

  root.replaceChildren(
    h("h1", {}, t.counterHeading),
    h("label", { for: "member-no" }, t.memberNo),
    h("div", { class: "actions" }, memberNo, find),
    out,
  );
  memberNo.focus();
}
