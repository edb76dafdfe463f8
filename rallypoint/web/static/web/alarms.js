/* Alarm pages: progressive enhancement only — every form works without this file. No inline scripts (CSP).
 *
 * Live updates come from web/stream.js as DOM events on `document` named `rp:<type>`
 * (alarm.raised, alarm.changed, alarm.ended, alarm.counts), each with the stream frame in
 * `event.detail` and the payload in `event.detail.data`. Without the stream nothing here breaks.
 */
(function () {
  "use strict";
  var body = document.body;

  /* Answer links carry their token in the path: take it out of the address bar and history at once. */
  if (body.dataset.cleanUrl && window.history && window.history.replaceState) {
    try { window.history.replaceState(null, "", body.dataset.cleanUrl); } catch (e) { /* keep the page usable */ }
  }

  function stream() { return window.RallypointStream || null; }

  function reportSeen(alarmId) {
    var s = stream();
    if (s && typeof s.seen === "function") {
      try { s.seen(alarmId); } catch (e) { /* the server marks the page view as seen too */ }
    }
  }

  function on(type, handler) {
    document.addEventListener("rp:" + type, function (event) {
      var detail = event.detail || {};
      handler(detail.data || {}, detail);
    });
  }

  /* Whether this page is live. A cockpit on a wall screen must not show old numbers as if they were
   * current: when the stream drops (and is not back within a few seconds) or the session ends, say so. */
  var liveStatus = document.getElementById("rp-live-status");
  if (liveStatus) {
    var lostTimer = null;
    var setStatus = function (text, ended) {
      liveStatus.querySelector("[data-live-text]").textContent = text;
      liveStatus.querySelector("[data-live-signin]").hidden = !ended;
      liveStatus.hidden = false;
    };
    document.addEventListener("rp:stream.closed", function (event) {
      var detail = event.detail || {};
      window.clearTimeout(lostTimer);
      if (detail.ended) {
        setStatus(liveStatus.dataset.textEnded, true);
      } else if (liveStatus.hidden) {  /* a short reconnect (site switch, restart) is not worth a notice */
        lostTimer = window.setTimeout(function () { setStatus(liveStatus.dataset.textLost, false); }, 4000);
      }
    });
    document.addEventListener("rp:ready", function () {
      window.clearTimeout(lostTimer);
      liveStatus.hidden = true;
    });
  }

  /* A submit button marked data-once works once: a shaking hand must not raise two alarms. */
  document.addEventListener("submit", function (event) {
    if (event.defaultPrevented) { return; }
    var button = event.submitter;
    if (button && button.hasAttribute("data-once")) {
      window.setTimeout(function () { button.disabled = true; button.setAttribute("aria-busy", "true"); }, 0);
    }
  });

  /* "Use my position": fills the hidden latitude/longitude fields of the form. */
  document.querySelectorAll("[data-geolocate]").forEach(function (button) {
    var status = document.getElementById(button.dataset.status);
    if (!("geolocation" in navigator)) { button.hidden = true; return; }
    button.addEventListener("click", function () {
      status.textContent = button.dataset.busy;
      button.disabled = true;
      navigator.geolocation.getCurrentPosition(function (position) {
        document.getElementById(button.dataset.lat).value = position.coords.latitude.toFixed(6);
        document.getElementById(button.dataset.lon).value = position.coords.longitude.toFixed(6);
        status.textContent = button.dataset.done.replace("%(m)s", String(Math.round(position.coords.accuracy)));
        button.disabled = false;
        button.setAttribute("aria-pressed", "true");
      }, function (error) {
        status.textContent = error && error.code === 1 ? button.dataset.denied : button.dataset.failed;
        button.disabled = false;
      }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
    });
  });

  /* ---- Live banners on every page ------------------------------------------------------------ */
  var banners = document.getElementById("rp-alarm-banners");
  var me = body.dataset.membership || "";

  /* Silent alarms (threat situations) show nothing on the device of the person who raised them. */
  function keepQuiet(alarm) {
    return alarm.silent && me && String(alarm.triggered_by) === me;
  }

  function pageShows(alarmId) {
    return document.querySelector(".active-alarms [data-alarm-id='" + alarmId + "'], #alarm-detail[data-alarm-id='" +
      alarmId + "'], [data-alarm-panel='" + alarmId + "']");
  }

  function bannerText(alarm) {
    var parts = [];
    if (alarm.is_drill) { parts.push(banners.dataset.textDrill); }
    if (alarm.location) { parts.push(alarm.location); }
    if (alarm.state === "ended") { parts.push(banners.dataset.textEnded); }
    return parts.join(" · ");
  }

  function showBanner(alarm) {
    var link = banners.querySelector("[data-alarm-id='" + alarm.id + "']");
    if (!link) {
      link = document.createElement("a");
      link.className = "alarm-banner";
      link.dataset.alarmId = String(alarm.id);
      link.href = banners.dataset.detailBase + alarm.id + "/";
      var title = document.createElement("strong");
      var sub = document.createElement("span");
      var text = document.createElement("span");
      text.className = "alarm-banner-text";
      text.appendChild(title);
      text.appendChild(sub);
      var go = document.createElement("span");
      go.className = "alarm-banner-go";
      go.textContent = banners.dataset.textOpen;
      link.appendChild(text);
      link.appendChild(go);
      banners.prepend(link);
    }
    link.querySelector("strong").textContent = alarm.scenario + " — " + alarm.level;
    link.querySelector(".alarm-banner-text span").textContent = bannerText(alarm);
    link.classList.toggle("over", alarm.state === "ended");
    var quiet = document.getElementById("no-alarm");
    if (quiet) { quiet.hidden = true; }
  }

  function removeBanner(alarmId) {
    var link = banners && banners.querySelector("[data-alarm-id='" + alarmId + "']");
    if (link) { link.remove(); }
  }

  /* A short sound of the scenario's kind; browsers may refuse audio before the first tap — then it stays quiet. */
  function playSound(kind) {
    if (!kind || kind === "none") { return; }
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) { return; }
    try {
      var ctx = new Context();
      var gain = ctx.createGain();
      gain.connect(ctx.destination);
      var osc = ctx.createOscillator();
      osc.connect(gain);
      var t = ctx.currentTime;
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.3, t + 0.05);
      if (kind === "siren") {
        for (var i = 0; i < 3; i += 1) {
          osc.frequency.setValueAtTime(650, t + i);
          osc.frequency.linearRampToValueAtTime(1000, t + i + 0.5);
          osc.frequency.linearRampToValueAtTime(650, t + i + 1);
        }
        gain.gain.setValueAtTime(0.3, t + 2.9);
      } else if (kind === "gong") {
        osc.frequency.setValueAtTime(440, t);
      } else {
        osc.type = "square";
        osc.frequency.setValueAtTime(880, t);
      }
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 3);
      osc.start(t);
      osc.stop(t + 3);
      osc.onended = function () { ctx.close(); };
    } catch (e) { /* no sound is better than a broken page */ }
    if (navigator.vibrate) { navigator.vibrate([400, 200, 400, 200, 400]); }
  }

  /* ---- The alarm page ------------------------------------------------------------------------ */
  var detail = document.getElementById("alarm-detail");
  var refreshing = false;

  function refreshDetail() {
    if (!detail || refreshing || !window.fetch) { return; }
    refreshing = true;
    fetch(window.location.pathname, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("alarm-detail");
        if (fresh) {
          detail.innerHTML = fresh.innerHTML;
          detail.dataset.state = fresh.dataset.state || "";
        }
      })
      .catch(function () { /* the next event tries again */ })
      .then(function () { refreshing = false; });
  }

  /* The answer and one's own status go over the open stream when it is up: no new connection and no page
   * load per tap, which is what counts when everyone on a site answers at once. Without the stream, or if
   * the server refuses or does not reply in time, the form is sent as before and the page shows why. */
  function choose(form, button) {
    form.querySelectorAll("button[name='" + button.name + "']").forEach(function (other) {
      var chosen = other === button;
      other.classList.toggle("chosen", chosen);
      if (chosen) { other.setAttribute("aria-pressed", "true"); } else { other.removeAttribute("aria-pressed"); }
    });
  }

  function streamMessage(form, button) {
    var alarm = Number(detail && detail.dataset.alarmId);
    if (form.dataset.overStream === "answer") {
      return { type: "answer", alarm: alarm, answer: button.value };
    }
    var message = { type: "status", alarm: alarm, status: button.value,
                    key: "s" + Date.now().toString(36) + Math.random().toString(36).slice(2, 10) };
    var point = form.querySelector("select[name=assembly_point]");
    if (point && point.value) { message.assembly_point = Number(point.value); }
    var note = form.querySelector("textarea[name=note]");
    if (note && note.value.trim()) { message.note = note.value; }
    return message;
  }

  function showSent(form, button) {
    choose(form, button);
    if (form.dataset.overStream === "answer") {
      var answer = document.getElementById("my-answer");
      if (answer) {
        answer.dataset.answer = button.value;
        answer.textContent = answer.getAttribute("data-text-" + button.value) || answer.textContent;
      }
      return;
    }
    var now = document.getElementById("my-status-now");
    var point = form.querySelector("select[name=assembly_point]");
    var note = form.querySelector("textarea[name=note]");
    if (now) {
      var text = (now.dataset.text || "").replace("%(status)s", button.textContent.trim());
      if (point && point.value) { text += " " + point.options[point.selectedIndex].text + "."; }
      now.textContent = text;
      now.dataset.status = button.value;
    }
    if (note) { note.value = ""; }
    var more = form.querySelector("details");
    if (more) { more.open = false; }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var button = event.submitter;
    if (event.defaultPrevented || !form.dataset || !form.dataset.overStream || !button || !button.name) { return; }
    if (form.dataset.sendForm || !detail || !window.RallypointStream || !window.RallypointStream.connected) { return; }
    event.preventDefault();
    if (form.getAttribute("aria-busy") === "true") { return; }
    form.setAttribute("aria-busy", "true");
    window.RallypointStream.request(streamMessage(form, button)).then(function (result) {
      form.removeAttribute("aria-busy");
      if (result.ok) { showSent(form, button); return; }
      form.dataset.sendForm = "1";  // the usual way, which shows the server's reason if it refuses
      if (form.requestSubmit) { form.requestSubmit(button); } else { button.click(); }
    });
  });

  if (detail && detail.dataset.alarmId && detail.hasAttribute("data-recipient")) {
    reportSeen(detail.dataset.alarmId);
  }

  function isThisPage(alarm) {
    return detail && alarm && String(alarm.id) === detail.dataset.alarmId && !body.dataset.cleanUrl;
  }

  /* More was missed than the stream could replay: show the alarm page's current state. */
  document.addEventListener("rp:ready", function (event) {
    if (event.detail && event.detail.complete === false && detail && !body.dataset.cleanUrl) { refreshDetail(); }
  });

  /* An alarm this person is told of for the first time: shown at once, with its sound, and reported seen.
   * The stream sends a person an alarm's events only while they are among its recipients (or on the crisis
   * team), so this is the case for "alarm.raised" and equally for an "alarm.changed" that added them (a
   * level raised or escalated to include them): the page must not wait for a reload. */
  function arrive(alarm) {
    if (!alarm || alarm.state === "ended" || keepQuiet(alarm) || !banners) { return; }
    if (banners.querySelector("[data-alarm-id='" + alarm.id + "']")) { showBanner(alarm); return; }
    if (!pageShows(alarm.id)) { showBanner(alarm); }
    reportSeen(alarm.id);
    playSound(alarm.sound);
  }

  on("alarm.raised", function (data) {
    arrive(data.alarm);
  });

  on("alarm.changed", function (data) {
    var alarm = data.alarm;
    if (!alarm) { return; }
    if (isThisPage(alarm)) { refreshDetail(); return; }
    if (pageShows(alarm.id)) { return; }
    arrive(alarm);
  });

  on("alarm.ended", function (data) {
    var alarm = data.alarm;
    if (!alarm) { return; }
    if (isThisPage(alarm)) { refreshDetail(); }
    removeBanner(alarm.id);
    var home = document.querySelector(".active-alarms [data-alarm-id='" + alarm.id + "']");
    if (home) { home.classList.add("over"); home.querySelector(".alarm-banner-go").textContent = banners.dataset.textEnded; }
  });
})();
