// The Today page's live part, fetched again every 15 seconds until the operator pauses it.
// Without scripts the page still shows the figures as of when it was loaded.
"use strict";
(() => {
  const live = document.getElementById("live");
  const toggle = document.getElementById("live-toggle");
  if (!live || !toggle) return;
  let paused = false;
  toggle.hidden = false;
  toggle.addEventListener("click", () => {
    paused = !paused;
    toggle.setAttribute("aria-pressed", String(paused));
    toggle.textContent = paused ? toggle.dataset.resume : toggle.dataset.pause;
  });
  const refresh = async () => {
    if (paused || document.hidden) return;
    try {
      const answer = await fetch("/console/?part=live", { credentials: "same-origin" });
      if (answer.redirected) {
        // The session ended: show the sign-in page.
        window.location.assign(answer.url);
      } else if (answer.ok) {
        live.innerHTML = await answer.text();
      }
    } catch {
      // The next turn tries again.
    }
  };
  setInterval(refresh, 15000);
})();
