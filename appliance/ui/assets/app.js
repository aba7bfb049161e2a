// berth dashboard: keeps a server-rendered page live. The server renders
// every section as HTML (html/template escapes it) and sends it as a
// server-sent event named by the section's element id; this only swaps
// it in. A log arrives line by line and is appended as text, never HTML.
"use strict";

// focusKey finds the focused element again in a replaced section, for a
// keyboard user to keep their place: a link by its target, a scrolling
// table by its label.
function focusKey(el) {
  for (const attr of ["href", "aria-label"]) {
    const v = el.getAttribute(attr);
    if (v) return `[${attr}="${CSS.escape(v)}"]`;
  }
  return null;
}

function liveSections(main) {
  const state = document.getElementById("live-state");
  const es = new EventSource(main.dataset.live);
  es.onopen = () => { state.textContent = "Live: updates as the cluster changes."; };
  es.onerror = () => { state.textContent = "Reconnecting for live updates…"; };
  for (const el of main.querySelectorAll("[id^='live-']")) {
    es.addEventListener(el.id, (e) => {
      const again = el.contains(document.activeElement) ? focusKey(document.activeElement) : null;
      el.innerHTML = e.data;
      const target = again && el.querySelector(again);
      if (target) target.focus();
    });
  }
  es.addEventListener("signedout", () => { es.close(); window.location.assign("/ui/signin"); });
  es.addEventListener("trouble", (e) => { state.textContent = "Not live: " + e.data; });
}

function liveLog(pre) {
  const state = document.getElementById("log-state");
  const es = new EventSource(pre.dataset.log);
  es.onopen = () => {
    // A reconnection sends the log from its start again.
    pre.textContent = "";
    state.textContent = "Following the log.";
  };
  es.onmessage = (e) => {
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.append(e.data + "\n");
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  };
  es.onerror = () => { state.textContent = "Reconnecting to the log…"; };
  for (const ev of ["end", "trouble"]) {
    es.addEventListener(ev, (e) => { es.close(); state.textContent = e.data; });
  }
  es.addEventListener("signedout", () => { es.close(); window.location.assign("/ui/signin"); });
}

document.addEventListener("DOMContentLoaded", () => {
  const main = document.querySelector("main[data-live]");
  if (main) liveSections(main);
  const log = document.querySelector("pre[data-log]");
  if (log) liveLog(log);
});
