// Step 3: a guardian's number, then the sign-up is registered.

import { api } from "../api";
import { h } from "../dom";
import { consentArgs } from "./consent";
import { actions, applicantArgs, type Kiosk } from "./context";
import { keypad } from "./keypad";

export function contact(k: Kiosk): HTMLElement[] {
  const { t, invoke, st, result, showError, go } = k;
  const guardian = h("input", {
    id: "guardian-phone",
    inputmode: "numeric",
    maxlength: "13",
    autocomplete: "off",
  });
  guardian.value = st.a.guardian;
  guardian.addEventListener("input", () => (st.a.guardian = guardian.value));
  const back = h("button", { type: "button", id: "back" }, t.back);
  back.addEventListener("click", () => go("consent"));
  const submit = h("button", { type: "button", id: "enroll", class: "primary" }, t.enroll);
  submit.addEventListener("click", async () => {
    submit.disabled = true;
    result.replaceChildren(h("p", { class: "working" }, t.working));
    try {
      st.done = await api(invoke).register({
        applicant: applicantArgs(st),
        consents: consentArgs(k),
        contact: { guardian_phone: st.a.guardian },
      });
      result.replaceChildren();
      k.onQueued();
      go("watch");
    } catch (e) {
      showError(e);
    } finally {
      submit.disabled = false;
    }
  });
  return [
    h(
      "div",
      { class: "kiosk" },
      h(
        "section",
        { class: "form" },
        h("p", { id: "contact-phone", class: "big-line" }, t.contactPhone(st.a.phone)),
        h("label", { for: "guardian-phone" }, t.guardianPhone),
        guardian,
        actions(back, submit),
        result,
      ),
      keypad(t, [{ input: guardian, label: t.guardianPhone }]),
    ),
  ];
}
