// The mhg console's only script: refreshes the overview's figures (#figures) every 10 seconds
// by fetching the same page and swapping that section in. Pages are complete without it.
(function () {
  "use strict";
  var figures = document.getElementById("figures");
  if (!figures || !window.fetch || !window.DOMParser) { return; }
  function refresh() {
    fetch(window.location.pathname, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (!text) { return; }
        var doc = new DOMParser().parseFromString(text, "text/html");
        var fresh = doc.getElementById("figures");
        var now = document.getElementById("figures");
        if (fresh && now) {
          now.replaceWith(document.importNode(fresh, true));
          document.body.setAttribute("data-refreshed", String(Date.now()));
        }
      })
      .catch(function () {});
  }
  window.setInterval(refresh, 10000);
})();
