// Step 1: who the applicant is (name, birth date and phone on the number pad, residency).

import { api } from "../api";
import { h, messageBox } from "../dom";
import { toCommandError } from "../ipc";
import { actions, applicantArgs, type Kiosk } from "./context";
import { keypad } from "./keypad";

export function identity(k: Kiosk): HTMLElement[] {
  const { t, invoke, st, result, showError, go, startOver } = k;
  const name = h("input", { id: "name", autocomplete: "off", value: st.a.name });
  const birth = h("input", {
    id: "birth-date",
    inputmode: "numeric",
    maxlength: "10",
    autocomplete: "off",
  });
  const phone = h("input", {
    id: "phone",
    inputmode: "numeric",
    maxlength: "13",
    autocomplete: "off",
  });
  name.value = st.a.name;
  birth.value = st.a.birth;
  phone.value = st.a.phone;
  name.addEventListener("input", () => (st.a.name = name.value));
  birth.addEventListener("input", () => (st.a.birth = birth.value));
  phone.addEventListener("input", () => (st.a.phone = phone.value));
  const proof = h("p", { id: "proof-hint", class: "hint strong" }, t.proofHint);
  proof.hidden = st.a.residency !== "works" && st.a.residency !== "studies";
  const choices = (["lives", "works", "studies", "outside"] as const).map((r) => {
    const b = h(
      "button",
      { type: "button", id: `residency-${r}`, "aria-pressed": String(r === st.a.residency) },
      t[r],
    );
    b.addEventListener("click", () => {
      st.a.residency = r;
      for (const other of choices) other.setAttribute("aria-pressed", String(other === b));
      proof.hidden = r !== "works" && r !== "studies";
    });
    return b;
  });
  const next = h("button", { type: "button", id: "next-identity", class: "primary" }, t.next);
  next.addEventListener("click", async () => {
    next.disabled = true;
    result.replaceChildren(h("p", { class: "working" }, t.working));
    try {
      await api(invoke).checkIdentity({ applicant: applicantArgs(st) });
      result.replaceChildren();
      go("consent");
    } catch (e) {
      const code = toCommandError(e).code;
      const ticket = code === "not_today" || code === "quota_used_up" ? ticketButton(k) : undefined;
      showError(e, ticket);
    } finally {
      next.disabled = false;
    }
  });
  const replace = h("button", { type: "button", id: "replace-card" }, t.replace.start);
  replace.addEventListener("click", () => k.replaceCard());
  const clear = h("button", { type: "button", id: "clear" }, t.clear);
  clear.addEventListener("click", () => {
    startOver();
    document.getElementById("name")?.focus();
  });
  const pad = keypad(t, [
    { input: birth, label: t.birthDate },
    { input: phone, label: t.phone },
  ]);
  return [
    h(
      "div",
      { class: "kiosk" },
      h(
        "section",
        { class: "form" },
        h("label", { for: "name" }, t.name),
        name,
        h("label", { for: "birth-date" }, t.birthDate),
        birth,
        h("label", { for: "phone" }, t.phone),
        phone,
        h(
          "fieldset",
          { class: "choices-group" },
          h("legend", {}, t.residency),
          h("div", { class: "choices" }, ...choices),
        ),
        proof,
        actions(next, clear),
        result,
        actions(replace),
      ),
      h("div", {}, pad, h("h2", {}, t.todayList), k.list),
    ),
  ];
}

function ticketButton(k: Kiosk): HTMLElement {
  const { t, invoke, st, say, showError } = k;
  const b = h("button", { type: "button", id: "ticket" }, t.ticket);
  const area = h("div", { class: "actions" }, b);
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      const ticket = await api(invoke).issueTicket({ applicant: applicantArgs(st) });
      area.replaceChildren(
        messageBox(
          "done",
          h("p", { id: "ticket-no", class: "big-line", "data-day": ticket.day }, ticket.message),
        ),
      );
      say(ticket.message);
    } catch (e) {
      showError(e);
    }
  });
  return area;
}
