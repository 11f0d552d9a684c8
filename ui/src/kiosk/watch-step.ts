// Step 4: the sign-up confirmed, and the member's watch paired if they have one.

import { api } from "../api";
import { h, messageBox } from "../dom";
import { receiptNo } from "../format";
import { warningLines, watchPicker } from "../watch";
import { actions, type Kiosk } from "./context";
import { identity } from "./identity";

export function watchStep(k: Kiosk): HTMLElement[] {
  const { t, invoke, st, say, go } = k;
  const done = st.done;
  if (!done) return identity(k);
  const e = done.enrollment;
  const area = h("div", { id: "pair-area" });
  const start = h("button", { type: "button", id: "pair-start", class: "primary" }, t.pairWatch);
  const picker = watchPicker({
    invoke,
    t,
    onPick: async (w) => {
      const paired = await api(invoke).pairWatch({
        opId: e.op_id,
        address: w.address,
      });
      picker.status.replaceChildren(
        messageBox(
          "done",
          h("p", { id: "paired", class: "big" }, t.paired(paired.serial, st.a.name || e.name)),
          h("p", {}, t.pairedSent),
          ...warningLines(paired.warnings),
        ),
      );
      say(t.paired(paired.serial, st.a.name || e.name));
    },
  });
  picker.section.hidden = true;
  start.addEventListener("click", () => {
    start.hidden = true;
    picker.section.hidden = false;
    picker.scan.click();
  });
  const toCard = h("button", { type: "button", id: "to-card", class: "primary" }, t.toCard);
  toCard.addEventListener("click", () => go("card"));
  area.append(h("div", { class: "actions" }, start), picker.section);
  return [
    messageBox(
      "done",
      h("div", { class: "big", id: "enrolled" }, t.enrolled),
      h("div", { id: "receipt-no" }, `${t.receiptNo} ${receiptNo(e.local_no)}`),
      h("div", { id: "enrolled-who" }, `${e.name} · ${t.age(e.age)}`),
      h(
        "div",
        { id: "admitted", "data-by": done.admitted_by },
        done.place !== null ? t.admittedLease(done.place) : t.admittedNoSchedule,
      ),
    ),
    area,
    actions(toCard, newApplicant(k)),
    h("h2", {}, t.todayList),
    k.list,
  ];
}

export function newApplicant(k: Kiosk): HTMLElement {
  const { t, startOver } = k;
  const b = h("button", { type: "button", id: "new-applicant" }, t.newApplicant);
  b.addEventListener("click", startOver);
  return b;
}
