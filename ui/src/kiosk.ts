// The sign-up kiosk's first screen: an applicant's details, checked and recorded by Rust.

import { h, messageBox } from "./dom";
import { receiptNo } from "./format";
import type { Labels } from "./i18n";
import { type ConfirmedEnrollment, type Invoke, toCommandError } from "./ipc";
import { type WatchWarning, warningLines, watchPicker } from "./watch";

/** What `pair_watch` answers. */
export interface PairedWatch {
  serial: string;
  warnings: WatchWarning[];
}

type Residency = "lives" | "works" | "studies" | "outside";

export interface KioskDeps {
  invoke: Invoke;
  t: Labels;
  /** Called after something was queued, so the header's count can refresh. */
  onQueued: () => void;
}

export function renderKiosk(root: HTMLElement, deps: KioskDeps): void {
  const { t, invoke } = deps;
  let residency: Residency = "lives";

  const name = h("input", { id: "name", autocomplete: "off" });
  const birth = h("input", { id: "birth-date", inputmode: "numeric", maxlength: "10" });
  const phone = h("input", { id: "phone", inputmode: "numeric", maxlength: "13" });
  const result = h("div", { id: "result" });
  const list = h("ul", { id: "today-list", class: "list" });

  const choices = (["lives", "works", "studies", "outside"] as const).map((r) => {
    const b = h(
      "button",
      { type: "button", id: `residency-${r}`, "aria-pressed": String(r === residency) },
      t[r],
    );
    b.addEventListener("click", () => {
      residency = r;
      for (const other of choices) other.setAttribute("aria-pressed", String(other === b));
    });
    return b;
  });

  async function refreshList(): Promise<void> {
    try {
      const rows = await invoke<ConfirmedEnrollment[]>("list_enrollments_today");
      list.replaceChildren(
        ...(rows.length === 0
          ? [h("li", {}, t.noneToday)]
          : rows.map((r) =>
              h(
                "li",
                { "data-op": r.op_id },
                `${receiptNo(r.local_no)} · ${r.name} · ${t.age(r.age)}`,
              ),
            )),
      );
    } catch (e) {
      list.replaceChildren(h("li", {}, toCommandError(e).message));
    }
  }

  /** After a confirmed enrollment: "pair a watch", which scans, and pairs the watch picked. */
  function pairStep(done: ConfirmedEnrollment): HTMLElement {
    const area = h("div", { id: "pair-area" });
    const start = h("button", { type: "button", id: "pair-start", class: "primary" }, t.pairWatch);
    const picker = watchPicker({
      invoke,
      t,
      onPick: async (w) => {
        const paired = await invoke<PairedWatch>("pair_watch", {
          opId: done.op_id,
          address: w.address,
        });
        picker.status.replaceChildren(
          messageBox(
            "done",
            h("p", { id: "paired", class: "big" }, t.paired(paired.serial, done.name)),
            h("p", {}, t.pairedSent),
            ...warningLines(paired.warnings),
          ),
        );
      },
    });
    picker.section.hidden = true;
    start.addEventListener("click", () => {
      start.hidden = true;
      picker.section.hidden = false;
      picker.scan.click();
    });
    area.append(h("div", { class: "actions" }, start), picker.section);
    return area;
  }

  const submit = h("button", { type: "button", id: "enroll", class: "primary" }, t.enroll);
  submit.addEventListener("click", async () => {
    submit.disabled = true;
    result.replaceChildren(h("p", {}, t.working));
    try {
      const done = await invoke<ConfirmedEnrollment>("enroll_applicant", {
        applicant: { name: name.value, birth_date: birth.value, phone: phone.value, residency },
      });
      result.replaceChildren(
        messageBox(
          "done",
          h("div", { class: "big" }, t.enrolled),
          h("div", { id: "receipt-no" }, `${t.receiptNo} ${receiptNo(done.local_no)}`),
          h("div", {}, `${done.name} · ${t.age(done.age)}`),
        ),
        pairStep(done),
      );
      deps.onQueued();
      await refreshList();
    } catch (e) {
      const err = toCommandError(e);
      result.replaceChildren(
        messageBox("error", h("span", { id: "error-code", hidden: true }, err.code), err.message),
      );
    } finally {
      submit.disabled = false;
    }
  });

  const clear = h("button", { type: "button", id: "clear" }, t.clear);
  clear.addEventListener("click", () => {
    name.value = "";
    birth.value = "";
    phone.value = "";
    result.replaceChildren();
    name.focus();
  });

  root.replaceChildren(
    h("h1", {}, t.kioskHeading),
    h(
      "div",
      { class: "kiosk" },
      h(
        "section",
        {},
        h("label", { for: "name" }, t.name),
        name,
        h("label", { for: "birth-date" }, t.birthDate),
        birth,
        h("label", { for: "phone" }, t.phone),
        phone,
        h("label", {}, t.residency),
        h("div", { class: "choices", role: "group" }, ...choices),
        h("div", { class: "actions" }, submit, clear),
      ),
      h("section", {}, result, h("h2", {}, t.todayList), list),
    ),
  );
  void refreshList();
}
