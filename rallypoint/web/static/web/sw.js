/* Rallypoint's service worker, served as /sw.js so that its scope is the whole app.
 *
 * It shows an alarm that arrives by Web Push as a notification and opens the alarm when the
 * notification is tapped; its two buttons answer (or report the status in an evacuation) with the
 * recipient's one-time link. It caches nothing: the server is the source of truth, and no alarm data
 * stays on the device beyond the notification itself.
 */
"use strict";

var ALARM_VIBRATION = [600, 200, 600, 200, 600];
var DRILL_VIBRATION = [200, 100, 200];

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });

/* Only pages of this app are opened from a notification. */
function appUrl(url) {
  try {
    var parsed = new URL(url || "/", self.location.origin);
    if (parsed.origin === self.location.origin) { return parsed.href; }
    return new URL(parsed.pathname + parsed.search, self.location.origin).href;
  } catch (e) {
    return new URL("/", self.location.origin).href;
  }
}

function readPayload(event) {
  if (!event.data) { return {}; }
  try { return event.data.json() || {}; } catch (e) { return { body: event.data.text() }; }
}

function notificationFor(data) {
  var ended = data.event === "ended";
  var options = {
    body: data.body || "",
    tag: data.tag || "rallypoint",
    renotify: true,                 /* a newer message about the same alarm alerts again */
    requireInteraction: !ended,     /* an alarm stays until the person acts on it */
    silent: !!data.silent,
    icon: "/static/web/icon-192.png",
    badge: "/static/web/badge-96.png",
    timestamp: Date.now(),
    data: { url: appUrl(data.url), alarm: data.alarm || null, drill: !!data.drill, event: data.event || "",
            answer: data.answer ? appUrl(data.answer) : "" }
  };
  if (data.answer && Array.isArray(data.actions) && data.actions.length) {
    options.actions = data.actions.slice(0, 2).map(function (a) { return { action: a.action, title: a.title }; });
  }
  if (data.lang) { options.lang = data.lang; }
  if (!options.silent) { options.vibrate = data.drill ? DRILL_VIBRATION : ALARM_VIBRATION; }
  return options;
}

self.addEventListener("push", function (event) {
  var data = readPayload(event);
  event.waitUntil(self.registration.showNotification(data.title || "Rallypoint", notificationFor(data)));
});

function openAlarm(url) {
  return self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (clients) {
    var exact = clients.filter(function (c) { return c.url === url; })[0];
    if (exact) { return exact.focus(); }
    var controlled = clients.filter(function (c) { return "navigate" in c && c.url.indexOf(self.location.origin) === 0; })[0];
    if (controlled) {
      return controlled.focus().then(function (client) {
        return client.navigate(url);
      }).catch(function () { return self.clients.openWindow(url); });
    }
    return self.clients.openWindow(url);
  });
}

/* A button of the notification answers with the one-time link the message carried (no cookies needed:
 * the link is the proof): "safe" / "need_help" report the status in an evacuation, "accepted" / "declined"
 * answer the alarm. If that fails (used, expired, offline), the alarm opens so the person can answer there. */
var STATUS_ACTIONS = { safe: true, need_help: true };
var ANSWER_ACTIONS = { accepted: true, declined: true };

function answerByLink(answer, action) {
  var field = STATUS_ACTIONS[action] ? "status" : "answer";
  return fetch(answer, {
    method: "POST", credentials: "omit", redirect: "follow",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: field + "=" + encodeURIComponent(action)
  }).then(function (response) { return response.ok; }).catch(function () { return false; });
}

/* A tap on the notification, or on one of its buttons (``action``). A function of its own so that the
 * browser test can run it with a real notification: a test cannot tap one. */
function notificationClicked(notification, action) {
  var data = notification.data || {};
  var url = appUrl(data.url);
  notification.close();
  if (data.answer && (STATUS_ACTIONS[action] || ANSWER_ACTIONS[action])) {
    return answerByLink(data.answer, action).then(function (ok) {
      return ok ? undefined : openAlarm(url);
    });
  }
  return openAlarm(url);
}

self.addEventListener("notificationclick", function (event) {
  event.waitUntil(notificationClicked(event.notification, event.action));
});

/* A browser may replace a subscription on its own ("pushsubscriptionchange"). The worker cannot
 * send it to the server (the CSRF token lives in the page), so the next visit of the profile page
 * sends the current one again (push.js). */
