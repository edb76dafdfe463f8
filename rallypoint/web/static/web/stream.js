/* The live stream of the site (WebSocket /ws/stream). Active only on pages with <body data-stream>.
 *
 * Every message from the server is dispatched on `document` as a CustomEvent named "rp:<type>"
 * (e.g. "rp:alarm.raised", "rp:alarm.counts", "rp:ready", "rp:heartbeat") with the frame as
 * `detail`; this file shows nothing itself. After a dropped connection it reconnects with back-off
 * and sends the last sequence number it saw, so the server replays what was missed. "rp:ready" with
 * `detail.complete === false` means more was missed than can be replayed: reload the page's data.
 * "rp:stream.closed" (detail: {code, reason, ended}) tells the page the connection closed; `ended`
 * is true when the server ended it because the session ended or lost access to the site. It still
 * tries again (another tab may have signed in anew, or the session key was renewed); a signed-out
 * browser is simply refused.
 *
 * window.RallypointStream.seen(alarmId): tell the server the page showed the alarm (in-app receipt).
 * window.RallypointStream.request(message): send an answer or a status report over the open socket
 * ({type: "answer" | "status", …}, see rallypoint/realtime/socket.py). Returns a Promise of
 * {ok: true, frame} when the server acknowledged it, or {ok: false, reason} when it refused it, the stream
 * was not ready, it closed first, or no reply came within 5 s: the page then sends its form as before.
 */
(function () {
  "use strict";
  if (!document.body || !document.body.hasAttribute("data-stream") || !("WebSocket" in window)) { return; }

  var STORE = "rp.stream";
  var ENDED = { 4001: true, 4003: true };  // the session ended or lost access to the site
  var AT_ONCE = { 4001: true, 4003: true, 4009: true, 1012: true };  // worth an immediate new attempt
  var SILENCE_MS = 45000;  // the server sends a heartbeat every 15 s
  var socket = null;
  var ready = false;
  var attempts = 0;
  var retryTimer = null;
  var watchdog = null;
  var stopped = false;
  var unsentSeen = [];
  var pending = {};  // request ref → {resolve, timer}
  var lastRef = 0;
  var REQUEST_MS = 5000;

  function load() {
    try { return JSON.parse(window.sessionStorage.getItem(STORE)) || {}; } catch (e) { return {}; }
  }

  function save(position) {
    try { window.sessionStorage.setItem(STORE, JSON.stringify(position)); } catch (e) { /* private mode */ }
  }

  function forget() {
    try { window.sessionStorage.removeItem(STORE); } catch (e) { /* private mode */ }
  }

  function remember(frame) {
    var position = load();
    if (frame.type === "ready") {
      save({ site: frame.site, seq: frame.seq });
    } else if (typeof frame.seq === "number" && position.site !== undefined && frame.seq > (position.seq || 0)) {
      position.seq = frame.seq;
      save(position);
    }
  }

  function dispatch(type, detail) {
    document.dispatchEvent(new CustomEvent("rp:" + type, { detail: detail }));
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  function settle(ref, result) {
    var entry = pending[ref];
    if (!entry) { return; }
    delete pending[ref];
    window.clearTimeout(entry.timer);
    entry.resolve(result);
  }

  function request(message) {
    return new Promise(function (resolve) {
      if (!ready) { resolve({ ok: false, reason: "offline" }); return; }
      lastRef += 1;
      var ref = "r" + lastRef;
      var timer = window.setTimeout(function () { settle(ref, { ok: false, reason: "timeout" }); }, REQUEST_MS);
      pending[ref] = { resolve: resolve, timer: timer };
      if (!send(Object.assign({}, message, { ref: ref }))) { settle(ref, { ok: false, reason: "offline" }); }
    });
  }

  function resetWatchdog() {
    window.clearTimeout(watchdog);
    watchdog = window.setTimeout(function () { if (socket) { socket.close(); } }, SILENCE_MS);
  }

  function onMessage(event) {
    var frame;
    try { frame = JSON.parse(event.data); } catch (e) { return; }
    if (!frame || typeof frame.type !== "string") { return; }
    resetWatchdog();
    if ((frame.type === "ack" || frame.type === "refused") && typeof frame.ref === "string") {
      settle(frame.ref, { ok: frame.type === "ack", reason: frame.reason || "", frame: frame });
      return;
    }
    if (frame.type === "ready") {
      ready = true;
      attempts = 0;
      unsentSeen.splice(0).forEach(function (id) { send({ type: "seen", alarm: id }); });
    } else if (typeof frame.seq === "number" && frame.type !== "heartbeat" && frame.seq <= (load().seq || 0)) {
      return;  // already seen (the server never repeats one; this only guards against a stale tab)
    }
    remember(frame);
    dispatch(frame.type, frame);
  }

  function onClose(event) {
    window.clearTimeout(watchdog);
    socket = null;
    ready = false;
    Object.keys(pending).forEach(function (ref) { settle(ref, { ok: false, reason: "closed" }); });
    if (AT_ONCE[event.code]) { attempts = 0; }
    dispatch("stream.closed", { code: event.code, reason: event.reason, ended: Boolean(ENDED[event.code]) });
    schedule();
  }

  function schedule() {
    if (stopped || retryTimer) { return; }
    var delay = Math.min(30000, 1000 * Math.pow(2, attempts)) * (0.5 + Math.random() / 2);
    attempts += 1;
    retryTimer = window.setTimeout(function () { retryTimer = null; open(); }, delay);
  }

  function open() {
    if (stopped || socket) { return; }
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + "/ws/stream");
    socket.addEventListener("open", function () {
      var position = load();
      send({ type: "hello", last_seq: typeof position.seq === "number" ? position.seq : null,
             site: typeof position.site === "number" ? position.site : null });
      resetWatchdog();
      dispatch("stream.open", {});
    });
    socket.addEventListener("message", onMessage);
    socket.addEventListener("close", onClose);
  }

  function reconnectNow() {
    if (stopped || socket) { return; }
    window.clearTimeout(retryTimer);
    retryTimer = null;
    open();
  }

  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { reconnectNow(); }
  });
  /* Signing out ends this tab's stream: nothing of it stays in the browser. */
  document.addEventListener("submit", function (event) {
    var action = event.target.getAttribute && event.target.getAttribute("action");
    if (action && /\/accounts\/logout\/$/.test(new URL(action, window.location.href).pathname)) {
      stopped = true;
      forget();
    }
  });

  window.RallypointStream = {
    seen: function (alarmId) {
      var id = Number(alarmId);
      if (!Number.isInteger(id)) { return; }
      if (!(ready && send({ type: "seen", alarm: id })) && unsentSeen.indexOf(id) === -1) { unsentSeen.push(id); }
    },
    request: request,
    get connected() { return ready; },
    get lastSeq() { var seq = load().seq; return typeof seq === "number" ? seq : null; }
  };

  open();
})();
