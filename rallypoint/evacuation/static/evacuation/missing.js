/* The missing list, live: a status or zone change in this alarm fetches the page again (at most once a
 * second) and swaps in its list. Without this file the page is correct as of its loading. */
(function () {
  "use strict";
  var live = document.getElementById("missing-live");
  if (!live || !window.fetch) { return; }
  var timer = null;
  var running = false;

  function refresh() {
    timer = null;
    if (running) { timer = window.setTimeout(refresh, 1000); return; }
    running = true;
    fetch(live.dataset.url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("missing-live");
        if (fresh) { live.replaceChildren.apply(live, Array.prototype.slice.call(fresh.childNodes)); }
      })
      .catch(function () { /* offline: the next change tries again */ })
      .then(function () { running = false; });
  }

  function changed(event) {
    var data = event.detail && event.detail.data;
    if (!data || String(data.alarm_id) !== live.dataset.alarm) { return; }
    if (!timer) { timer = window.setTimeout(refresh, 1000); }
  }

  ["rp:evacuation.statuses", "rp:evacuation.zone", "rp:evacuation.counts"].forEach(function (type) {
    document.addEventListener(type, changed);
  });
})();
