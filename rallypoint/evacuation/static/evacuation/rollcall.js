/* The roll call at an assembly point, usable on a bad network.
 *
 * A tap on "Present" marks the person on the page at once and puts the mark in a queue in localStorage
 * (ids and times only, no names: "rp.evac.<alarm>"). The queue is sent in batches to the status API
 * (POST /api/v1/alarms/<id>/statuses) with a client key per mark, so a mark sent twice counts once; when the
 * network is down the marks wait and are sent when it is back (every 5 s, and on "online"). Each mark keeps the
 * time it was tapped: when two marks for a person conflict, the later one counts, and both are recorded.
 * The queue is wiped when the alarm ends (live event or the page's own state) and at sign-out.
 * Without this file the page works with one form per person.
 */
(function () {
  "use strict";
  var root = document.getElementById("roll-call");
  var PREFIX = "rp.evac.";
  if (!root) {
    if (document.getElementById("roll-call-ended")) { wipeAll(); }
    return;
  }
  var alarm = root.dataset.alarm;
  var point = parseInt(root.dataset.point, 10);
  var key = PREFIX + alarm;
  var token = root.querySelector("#roll-call-token input[name=csrfmiddlewaretoken]").value;
  var list = document.getElementById("roll-call-list");
  var search = document.getElementById("roll-call-search");
  var groupSelect = document.getElementById("roll-call-group");
  var markShown = document.getElementById("mark-shown");
  var syncState = document.getElementById("sync-state");
  var sending = false;

  function wipeAll() { window.Rallypoint.forgetEvacuation(); }  /* web/app.js */

  function load() {
    try { return JSON.parse(window.localStorage.getItem(key)) || []; } catch (e) { return []; }
  }

  function save(queue) {
    try {
      if (queue.length) { window.localStorage.setItem(key, JSON.stringify(queue)); }
      else { window.localStorage.removeItem(key); }
    } catch (e) { /* storage unavailable: the marks stay in memory */ }
    memory = queue;
  }

  var memory = load();

  function newKey() {
    var bytes = new Uint8Array(12);
    window.crypto.getRandomValues(bytes);
    return "rc-" + Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function showState() {
    var waiting = memory.length;
    syncState.hidden = waiting === 0;
    syncState.textContent = root.dataset.textWaiting.replace("{n}", waiting);
    root.dataset.waiting = String(waiting);
  }

  function counts() {
    var rows = list.querySelectorAll("li[data-person]");
    var here = 0, open = 0;
    rows.forEach(function (row) {
      if (row.classList.contains("present")) { here++; }
      else if (row.hasAttribute("data-expected") && !row.dataset.status) { open++; }
    });
    document.getElementById("count-here").textContent = here;
    document.getElementById("count-open").textContent = open;
  }

  function showPresent(row) {
    row.classList.add("present");
    row.dataset.status = "safe";
    var button = row.querySelector(".present-button");
    if (button) {
      button.setAttribute("aria-pressed", "true");
      button.textContent = "✓ " + root.dataset.textPresent;
    }
  }

  function mark(rows) {
    var now = new Date().toISOString();
    var queue = memory.slice();
    rows.forEach(function (row) {
      showPresent(row);
      queue.push({ membership_id: parseInt(row.dataset.person, 10), status: "safe", assembly_point_id: point,
                   at: now, client_key: newKey() });
    });
    save(queue);
    counts();
    showState();
    send();
  }

  function send() {
    if (sending || !memory.length) { showState(); return; }
    sending = true;
    var batch = memory.slice(0, 200);
    fetch(root.dataset.api, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": token },
      body: JSON.stringify({ reports: batch })
    }).then(function (response) {
      if (response.status === 401 || response.status === 403) { wipeAll(); memory = []; return; }
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      var sentKeys = {};
      batch.forEach(function (item) { sentKeys[item.client_key] = true; });
      save(memory.filter(function (item) { return !sentKeys[item.client_key]; }));
    }).catch(function () { /* offline or the server is busy: try again later */ })
      .then(function () {
        sending = false;
        showState();
        if (memory.length && navigator.onLine !== false && batch.length === 200) { send(); }
      });
  }

  function filter() {
    var text = (search && search.value || "").trim().toLowerCase();
    var group = groupSelect ? groupSelect.value : "";
    var shown = 0;
    list.querySelectorAll("li[data-person]").forEach(function (row) {
      var matches = (!text || row.dataset.name.indexOf(text) !== -1) &&
        (!group || (" " + row.dataset.groups).indexOf(" " + group + " ") !== -1);
      var visible = matches && (row.hasAttribute("data-expected") || text.length >= 2);
      row.hidden = !visible;
      if (visible && !row.classList.contains("present")) { shown++; }
    });
    markShown.disabled = shown === 0 || (!text && !group);
  }

  list.addEventListener("submit", function (event) {
    var row = event.target.closest("li[data-person]");
    if (!row) { return; }
    event.preventDefault();
    if (!row.classList.contains("present")) { mark([row]); }
  });

  markShown.addEventListener("click", function () {
    var rows = Array.prototype.filter.call(list.querySelectorAll("li[data-person]"), function (row) {
      return !row.hidden && !row.classList.contains("present");
    });
    if (rows.length) { mark(rows); }
    filter();
  });

  if (search) { search.addEventListener("input", filter); }
  if (groupSelect) { groupSelect.addEventListener("change", filter); }

  /* Marks made by others (another lead, a teacher, the person themselves) arrive live. */
  document.addEventListener("rp:evacuation.statuses", function (event) {
    var data = event.detail && event.detail.data;
    if (!data || String(data.alarm_id) !== alarm) { return; }
    data.changes.forEach(function (change) {
      var row = list.querySelector("li[data-person='" + change.membership + "']");
      if (!row) { return; }
      row.dataset.status = change.status;
      if (change.assembly_point === point) { showPresent(row); }
    });
    counts();
  });

  document.addEventListener("rp:alarm.ended", function (event) {
    var data = event.detail && event.detail.data;
    if (!data || !data.alarm || String(data.alarm.id) !== alarm) { return; }
    wipeAll();
    memory = [];
    root.remove();
    var ended = document.createElement("p");
    ended.className = "notice info";
    ended.id = "roll-call-ended";
    ended.textContent = root.dataset.textEnded;
    document.querySelector("h1").after(ended);
  });

  window.addEventListener("online", send);
  window.setInterval(send, 5000);
  // Marks of an earlier visit to this page that were not sent yet: show them and send them.
  memory.forEach(function (item) {
    var row = list.querySelector("li[data-person='" + item.membership_id + "']");
    if (row && item.assembly_point_id === point) { showPresent(row); }
  });
  counts();
  filter();
  send();
})();
