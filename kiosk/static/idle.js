// Idle timeout: after idle-s without a touch, a visible countdown; at zero the
// session ends (/reset) and everything typed is gone, the on-screen keyboard's
// letters too. No pop-up dialogs.
"use strict";
(() => {
  const body = document.body;
  const idleS = Number(body.dataset.idleS || 60), countdownS = Number(body.dataset.countdownS || 10);
  const bar = document.getElementById("idle"), left = document.getElementById("idle-left");
  let idleTimer = null, tick = null, remaining = 0;
  // Everything typed goes: the forms, and the on-screen keyboard's letters
  // being composed (keyboard.js listens for "kiosk:wipe").
  function wipe() {
    document.dispatchEvent(new CustomEvent("kiosk:wipe"));
    document.querySelectorAll("form").forEach((f) => f.reset());
  }
  function stopCountdown() { clearInterval(tick); tick = null; bar.hidden = true; }
  function startCountdown() {
    remaining = countdownS; left.textContent = remaining; bar.hidden = false;
    tick = setInterval(() => {
      remaining -= 1; left.textContent = remaining;
      if (remaining <= 0) { clearInterval(tick); wipe(); location.replace("/reset"); }
    }, 1000);
  }
  function activity() { if (tick) stopCountdown(); clearTimeout(idleTimer); idleTimer = setTimeout(startCountdown, idleS * 1000); }
  for (const ev of ["pointerdown", "keydown", "input", "touchstart"]) document.addEventListener(ev, activity, { passive: true });
  document.getElementById("idle-stay").addEventListener("click", activity);
  activity();
})();
