// finsentry console: refreshes "My queue" every few seconds without a reload (short polling).
// No inline script anywhere (the Content-Security-Policy forbids it); this file is the only script.
(function () {
  "use strict";
  var rows = document.getElementById("queue-rows");
  if (!rows) { return; }
  var updated = document.getElementById("updated");
  function busy() {
    // Never replace rows while the analyst is typing or choosing in them.
    if (rows.contains(document.activeElement)) { return true; }
    var fields = rows.querySelectorAll("input:not([type=hidden])");
    for (var i = 0; i < fields.length; i++) { if (fields[i].value) { return true; } }
    return false;
  }
  function refresh() {
    if (busy()) { return; }
    fetch(rows.getAttribute("data-rows"), {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (response) {
        if (response.redirected || response.status !== 200) { throw new Error("signed out or unavailable"); }
        return response.text();
      })
      .then(function (html) {
        if (busy()) { return; }
        rows.innerHTML = html;  // server-rendered and escaped by the template engine
        if (updated) { updated.textContent = "updated " + new Date().toISOString().slice(11, 19) + " UTC"; }
      })
      .catch(function () {
        if (updated) { updated.textContent = "not updating: reload the page (you may need to sign in again)"; }
      });
  }
  window.setInterval(refresh, 3000);
}());
