// Step 2: the consent items, each agreed to or not.

import { api } from "../api";
import { h } from "../dom";
import { actions, type Kiosk } from "./context";

export function consent(k: Kiosk): HTMLElement[] {
  const { t, invoke, st, result, showError, go } = k;
  const items = k.setup()?.consents ?? [];
  const rows = items.map((item) => {
    // Named with their item, so that "agree" is never heard without what it agrees to.
    const yes = h(
      "button",
      { type: "button", id: `consent-${item.id}-yes`, "aria-label": `${t.agree}: ${item.title}` },
      t.agree,
    );
    const no = h(
      "button",
      {
        type: "button",
        id: `consent-${item.id}-no`,
        "aria-label": `${t.disagree}: ${item.title}`,
      },
      t.disagree,
    );
    const show = () => {
      const v = st.a.answers.get(item.id);
      yes.setAttribute("aria-pressed", String(v === true));
      no.setAttribute("aria-pressed", String(v === false));
    };
    yes.addEventListener("click", () => {
      st.a.answers.set(item.id, true);
      show();
    });
    no.addEventListener("click", () => {
      st.a.answers.set(item.id, false);
      show();
    });
    show();
    return h(
      "div",
      {
        class: "consent",
        role: "group",
        "aria-labelledby": `consent-${item.id}-title`,
        "data-id": item.id,
        "data-version": item.version,
      },
      h(
        "p",
        { class: "consent-title", id: `consent-${item.id}-title` },
        h(
          "span",
          { class: item.required ? "tag required" : "tag" },
          item.required ? t.required : t.optional,
        ),
        " ",
        item.title,
      ),
      h("div", { class: "choices" }, yes, no),
    );
  });
  const all = h("button", { type: "button", id: "agree-all" }, t.agreeAll);
  all.addEventListener("click", () => {
    for (const item of items) st.a.answers.set(item.id, true);
    // Everything agreed: on to "next", the only thing left to do here.
    go("consent", "next-consent");
  });
  const back = h("button", { type: "button", id: "back" }, t.back);
  back.addEventListener("click", () => go("identity"));
  const next = h("button", { type: "button", id: "next-consent", class: "primary" }, t.next);
  next.addEventListener("click", async () => {
    try {
      await api(invoke).checkConsent({ consents: consentArgs(k) });
      result.replaceChildren();
      go("contact");
    } catch (e) {
      showError(e);
    }
  });
  return [all, ...rows, actions(back, next), result];
}

export function consentArgs(k: Kiosk) {
  const { st } = k;
  return (k.setup()?.consents ?? [])
    .filter((i) => st.a.answers.has(i.id))
    .map((i) => ({ id: i.id, version: i.version, agreed: st.a.answers.get(i.id) === true }));
}
