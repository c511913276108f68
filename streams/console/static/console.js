// finsentry console: refreshes "My queue" every few seconds without a reload (short polling).
// No inline script anywhere (the Content-Security-Policy forbids it); this file is the only script.
(function () {
  "use strict";
  // Back and Forward may restore a page from the browser's memory, no-store or not: a case page that
  // still offered Resolve after the case had left you. Fetch it again instead.
  window.addEventListener("pageshow", function (event) { if (event.persisted) { window.location.reload(); } });
  var rows = document.getElementById("queue-rows");
  if (!rows) { return; }
  var updated = document.getElementById("updated");
  function busy() {
    // Never replace rows while the analyst is typing or choosing in them, or while the pointer is over
    // them: a new or escalated case sorting in above would move another case's Resolve under a click.
    if (rows.contains(document.activeElement) || rows.matches(":hover")) { return true; }
    var fields = rows.querySelectorAll("input:not([type=hidden]), select");
    for (var i = 0; i < fields.length; i++) { if (fields[i].value) { return true; } }
    return false;
  }
  function held() {
    rows.setAttribute("data-held", String(Number(rows.getAttribute("data-held") || 0) + 1));  // refreshes skipped
    if (updated) { updated.textContent = "Held while you work in the queue"; }
  }
  function refresh() {
    if (busy()) { held(); return; }
    fetch(rows.getAttribute("data-rows"), {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (response) {
        if (response.redirected || response.status !== 200) { throw new Error("signed out or unavailable"); }
        return response.text();
      })
      .then(function (html) {
        if (busy()) { held(); return; }
        rows.innerHTML = html;  // server-rendered and escaped by the template engine
        if (updated) { updated.textContent = "As of " + new Date().toISOString().slice(11, 19) + " UTC"; }
      })
      .catch(function () {
        if (updated) { updated.textContent = "Not updating: reload the page (you may need to sign in again)"; }
      });
  }
  window.setInterval(refresh, 3000);
}());
