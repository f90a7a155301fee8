/* The customer's plan page after an action or a checkout: the provider's webhook lands within
   seconds. Poll /account/plan/state/ (every 1.5 s, for 45 s) until the membership differs from what
   the page showed (data-since), then load the plan page afresh; past the limit, say so. */
(function () {
  "use strict";
  var INTERVAL = 1500, LIMIT = 45000;

  function start() {
    var box = document.querySelector("[data-poll]");
    if (!box) return;
    var url = box.getAttribute("data-poll"), since = box.getAttribute("data-since");
    var started = Date.now();
    function giveUp() {
      var spinner = box.querySelector(".spinner"), message = box.querySelector("[data-poll-message]");
      var timeout = box.querySelector("[data-poll-timeout]");
      if (spinner) spinner.remove();
      if (message) message.hidden = true;
      if (timeout) timeout.hidden = false;
      box.setAttribute("data-poll-state", "timeout");
    }
    function tick() {
      if (Date.now() - started > LIMIT) return giveUp();
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (data && data.fingerprint !== since) {
            box.setAttribute("data-poll-state", "done");
            var next = new URL(window.location.href);
            next.searchParams.delete("pending");  // a checkout's return keeps waiting until it is paid
            window.location.replace(next.pathname + next.search);
          } else {
            setTimeout(tick, INTERVAL);
          }
        })
        .catch(function () { setTimeout(tick, INTERVAL); });
    }
    setTimeout(tick, INTERVAL);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
