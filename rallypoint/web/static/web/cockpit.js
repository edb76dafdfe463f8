/* The cockpit, live: numbers change in place on `rp:alarm.counts`; other alarm events fetch the
 * server-rendered panel (GET cockpit/<id>/panel) and swap in its parts. Forms someone is typing in
 * are left alone. Without web/stream.js the page is a plain page that shows the state of its loading.
 */
(function () {
  "use strict";
  var list = document.getElementById("cockpit-alarms");
  if (!list || !window.fetch) { return; }
  var pending = {};
  var inFlight = {};

  function panelOf(id) { return list.querySelector("[data-alarm-panel='" + id + "']"); }

  function panelUrl(id) {
    var panel = panelOf(id);
    return panel ? panel.dataset.panelUrl : list.dataset.panelBase + id + "/panel";
  }

  /* A form part is "busy" while someone works in it: focus inside, or a value changed from the page's. */
  function busy(part) {
    if (part.contains(document.activeElement) && document.activeElement !== document.body) { return true; }
    return Array.prototype.some.call(part.querySelectorAll("input, textarea, select"), function (el) {
      if (el.type === "hidden") { return false; }
      if (el.tagName === "SELECT") { return el.selectedIndex > 0; }
      return el.value !== el.defaultValue;
    });
  }

  function keepOpen(oldPart, newPart) {
    var old = oldPart.querySelectorAll("details");
    newPart.querySelectorAll("details").forEach(function (el, i) {
      if (old[i]) { el.open = old[i].open; }
    });
  }

  function swap(id, fresh) {
    var panel = panelOf(id);
    if (!panel) {
      list.prepend(fresh);
      var none = document.getElementById("no-active");
      if (none) { none.hidden = true; }
      return;
    }
    panel.className = fresh.className;
    var names = {};
    fresh.querySelectorAll("[data-part]").forEach(function (part) { names[part.dataset.part] = true; });
    panel.querySelectorAll("[data-part]").forEach(function (oldPart) {
      if (!names[oldPart.dataset.part]) { oldPart.remove(); }
    });
    fresh.querySelectorAll("[data-part]").forEach(function (newPart) {
      var name = newPart.dataset.part;
      var oldPart = panel.querySelector("[data-part='" + name + "']");
      if (!oldPart) { panel.appendChild(newPart); return; }
      if (name === "manage" && busy(oldPart)) { return; }
      keepOpen(oldPart, newPart);
      oldPart.replaceWith(newPart);
    });
  }

  function refresh(id) {
    if (inFlight[id]) { pending[id] = true; return; }
    inFlight[id] = true;
    fetch(panelUrl(id), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.querySelector("[data-alarm-panel]");
        if (!fresh) { return; }
        fresh.querySelectorAll("input[name=next]").forEach(function (el) { el.value = window.location.pathname; });
        swap(id, fresh);
      })
      .catch(function () { /* the next event tries again */ })
      .then(function () {
        inFlight[id] = false;
        if (pending[id]) { pending[id] = false; refresh(id); }
      });
  }

  var later = {};
  function refreshSoon(id) {
    if (later[id]) { return; }
    later[id] = window.setTimeout(function () { later[id] = null; refresh(id); }, 2000);
  }

  function setCount(panel, key, value) {
    var cell = panel.querySelector("[data-count='" + key + "']");
    if (!cell) { return false; }
    var text = String(value || 0);
    if (cell.textContent !== text) {
      cell.textContent = text;
      cell.classList.remove("changed");
      void cell.offsetWidth; /* restart the highlight */
      cell.classList.add("changed");
    }
    return true;
  }

  function applyCounts(id, counts) {
    var panel = panelOf(id);
    if (!panel || !counts) { return false; }
    var complete = true;
    ["total", "accepted", "declined", "none", "seen"].forEach(function (key) {
      complete = setCount(panel, key, counts[key]) && complete;
    });
    Object.keys(counts.by_channel || {}).forEach(function (kind) {
      var s = counts.by_channel[kind];
      complete = setCount(panel, "channel." + kind + ".waiting", (s.pending || 0) + (s.sending || 0)) && complete;
      ["sent", "delivered", "failed", "skipped"].forEach(function (state) {
        complete = setCount(panel, "channel." + kind + "." + state, s[state]) && complete;
      });
    });
    Object.keys(counts.by_group || {}).forEach(function (gid) {
      var g = counts.by_group[gid];
      ["accepted", "declined", "none"].forEach(function (answer) {
        complete = setCount(panel, "group." + gid + "." + answer, g[answer]) && complete;
      });
    });
    return complete;
  }

  function alarmIdOf(data, frame) {
    if (data.alarm && data.alarm.id) { return String(data.alarm.id); }
    if (data.alarm_id) { return String(data.alarm_id); }
    return frame && frame.alarm ? String(frame.alarm) : "";
  }

  document.addEventListener("rp:alarm.counts", function (event) {
    var detail = event.detail || {};
    var data = detail.data || {};
    var id = alarmIdOf(data, detail);
    if (!id || !panelOf(id)) { return; }
    if (!applyCounts(id, data.counts)) { refresh(id); return; }
    refreshSoon(id); /* the list of who has not answered follows */
  });

  /* An evacuation's numbers: in place where the panel shows them; a zone or point it does not show yet, or a
   * zone's new state (a helper's report), fetches the panel. */
  function applyEvacuation(id, counts) {
    var panel = panelOf(id);
    if (!panel || !counts || !panel.querySelector("[data-part='evacuation']")) { return false; }
    var complete = true;
    ["no_status", "on_site", "accounted", "percent", "safe", "need_help", "not_on_site"].forEach(function (key) {
      complete = setCount(panel, "evac." + key, counts[key]) && complete;
    });
    Object.keys(counts.by_zone || {}).forEach(function (zone) {
      var row = counts.by_zone[zone];
      if (!panel.querySelector("tr[data-zone='" + zone + "']")) { return; }
      setCount(panel, "evac.zone." + zone + ".on_site", row.on_site);
      setCount(panel, "evac.zone." + zone + ".no_status", row.no_status);
    });
    Object.keys(counts.by_assembly_point || {}).forEach(function (point) {
      complete = setCount(panel, "evac.point." + point, counts.by_assembly_point[point]) && complete;
    });
    return complete;
  }

  document.addEventListener("rp:evacuation.counts", function (event) {
    var detail = event.detail || {};
    var data = detail.data || {};
    var id = alarmIdOf(data, detail);
    if (!id || !panelOf(id)) { return; }
    if (!applyEvacuation(id, data.counts)) { refresh(id); return; }
    refreshSoon(id); /* the curve follows */
  });

  document.addEventListener("rp:evacuation.zone", function (event) {
    var detail = event.detail || {};
    var id = alarmIdOf(detail.data || {}, detail);
    if (id && panelOf(id)) { refresh(id); }
  });

  /* More was missed than the stream could replay: fetch every panel afresh. */
  document.addEventListener("rp:ready", function (event) {
    if (event.detail && event.detail.complete === false) {
      list.querySelectorAll("[data-alarm-panel]").forEach(function (panel) { refresh(panel.dataset.alarmPanel); });
    }
  });

  ["alarm.raised", "alarm.changed", "alarm.ended"].forEach(function (type) {
    document.addEventListener("rp:" + type, function (event) {
      var detail = event.detail || {};
      var id = alarmIdOf(detail.data || {}, detail);
      if (!id) { return; }
      /* On a single alarm's page only that alarm; on the list every alarm of the site. */
      if (type === "alarm.raised" && list.classList.contains("single")) { return; }
      if (!panelOf(id) && list.classList.contains("single")) { return; }
      refresh(id);
    });
  });
})();
