// Stent web view: confirmation dialogs for actions, and live updates over
// Server-Sent Events (the page fetches itself again and swaps its #live part).
"use strict";
(function () {
  const dialog = document.getElementById("confirm-dialog");

  // Every action form asks first, in the page.
  document.addEventListener("submit", function (ev) {
    const form = ev.target;
    if (!form.matches || !form.matches("form[data-confirm]")) return;
    if (form.dataset.confirmed === "1") return;
    ev.preventDefault();
    if (!dialog || typeof dialog.showModal !== "function") {
      addConfirmed(form);
      form.submit(); // the server asks on a page of its own
      return;
    }
    document.getElementById("confirm-question").textContent = form.dataset.confirm;
    let detail = form.dataset.detail || "";
    const name = form.querySelector("[name=name]");
    const payload = form.querySelector("[name=payload]");
    if (name) detail = "Signal \u201c" + name.value + "\u201d with payload " + (payload && payload.value.trim() ? payload.value.trim() : "null") + ".";
    document.getElementById("confirm-detail").textContent = detail;
    dialog.returnValue = "";
    dialog.onclose = function () {
      if (dialog.returnValue !== "ok") return;
      addConfirmed(form);
      form.dataset.confirmed = "1";
      form.submit();
    };
    dialog.showModal();
    document.getElementById("confirm-ok").focus();
  });

  // The list's "select all on this page" box.
  document.addEventListener("change", function (ev) {
    if (ev.target.id !== "pick-all") return;
    for (const c of document.querySelectorAll("input.pick")) c.checked = ev.target.checked;
  });

  function addConfirmed(form) {
    if (form.querySelector("input[name=confirmed]")) return;
    const i = document.createElement("input");
    i.type = "hidden";
    i.name = "confirmed";
    i.value = "1";
    form.appendChild(i);
  }

  // Live updates.
  const live = document.body.dataset.live;
  if (!live || !window.EventSource) return;
  const dot = document.getElementById("live-dot");
  let pending = false, busy = false;
  const es = new EventSource(document.body.dataset.base + "live?" + live);
  es.onopen = function () { if (dot) dot.classList.add("on"); };
  es.onerror = function () { if (dot) dot.classList.remove("on"); };
  es.addEventListener("change", function () { pending = true; refresh(); });

  // Someone typing into a form or reading a dialog is not interrupted: the swap waits.
  function editing() {
    const a = document.activeElement;
    if (dialog && dialog.open) return true;
    if (a && (a.tagName === "INPUT" || a.tagName === "TEXTAREA" || a.tagName === "SELECT") && a.closest("#live")) return true;
    for (const i of document.querySelectorAll("#live input:not([type=hidden])")) {
      if (i.type === "checkbox" ? i.checked : i.value) return true; // a selection is kept
    }
    return false;
  }

  async function refresh() {
    if (!pending || busy) return;
    if (editing()) { setTimeout(refresh, 500); return; }
    pending = false; busy = true;
    try {
      const res = await fetch(location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin" });
      if (!res.ok) return;
      const html = await res.text();
      // A dialog opened or typing began while the page was fetched: swapping now
      // would detach the form being confirmed. Fetch again once it is done.
      if (editing()) { pending = true; return; }
      const doc = new DOMParser().parseFromString(html, "text/html");
      const next = doc.getElementById("live"), cur = document.getElementById("live");
      if (next && cur) {
        cur.replaceWith(document.adoptNode(next));
        document.body.dataset.updated = String(Number(document.body.dataset.updated || "0") + 1);
      }
    } catch (e) {
      pending = true;
    } finally {
      busy = false;
      if (pending) setTimeout(refresh, 500);
    }
  }
})();
