/* The installable app: registers the service worker (/sw.js) on every page and, where the page has a
 * [data-push-toggle] button, turns Web Push on or off for this browser.
 *
 * The button carries the URLs (data-key-url, data-subscribe-url, data-unsubscribe-url) and all texts
 * (data-text-*, data-label-*), translated by the template. Requests carry the CSRF token of the
 * button's form (the CSRF cookie is HttpOnly). No inline scripts (CSP).
 *
 * The button stays hidden until the service worker runs. When it cannot (a page not opened over HTTPS,
 * a certificate the browser does not trust, a browser without service workers or push), the state line
 * says why instead.
 */
(function () {
  "use strict";
  var button = document.querySelector("[data-push-toggle]");
  var state = document.querySelector("[data-push-state]");

  function unavailable(textKey) {
    if (!button) { return; }
    button.hidden = true;
    if (state) { state.textContent = button.dataset[textKey] || ""; }
    button.dataset.pushState = textKey.replace(/^text/, "").toLowerCase();
  }

  if (!window.isSecureContext) { unavailable("textInsecure"); return; }
  if (!("serviceWorker" in navigator)) { unavailable("textUnsupported"); return; }
  var registered = navigator.serviceWorker.register("/sw.js", { scope: "/" });
  if (!button) { registered.catch(function () { /* the app works without it */ }); return; }
  if (!("PushManager" in window) || !("Notification" in window)) {
    registered.catch(function () { /* nothing to offer either way */ });
    unavailable("textUnsupported");
    return;
  }

  var subscribed = false;

  function ServerMessage(text) { this.text = text; }

  function show(textKey, on, extra) {
    subscribed = on;
    button.textContent = on ? button.dataset.labelOff : button.dataset.labelOn;
    button.setAttribute("aria-pressed", on ? "true" : "false");
    if (state) { state.textContent = extra || button.dataset[textKey] || ""; }
    button.dataset.pushState = textKey.replace(/^text/, "").toLowerCase();
  }

  function csrfToken() {
    var input = (button.form || document).querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function post(url, body) {
    return window.fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (!response.ok) { throw new ServerMessage(answer.detail || ""); }
        return answer;
      });
    });
  }

  function toBytes(base64url) {
    var base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) { base64 += "="; }
    var binary = window.atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i += 1) { bytes[i] = binary.charCodeAt(i); }
    return bytes;
  }

  function sameKey(subscription, key) {
    var current = subscription.options && subscription.options.applicationServerKey;
    if (!current) { return true; }
    var a = new Uint8Array(current);
    if (a.length !== key.length) { return false; }
    for (var i = 0; i < a.length; i += 1) { if (a[i] !== key[i]) { return false; } }
    return true;
  }

  function serverKey() {
    return window.fetch(button.dataset.keyUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (answer) { return toBytes(answer.key); });
  }

  function subscribe(registration) {
    return window.Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") { throw new ServerMessage(button.dataset.textDenied); }
      return Promise.all([serverKey(), registration.pushManager.getSubscription()]);
    }).then(function (found) {
      var key = found[0], old = found[1];
      var fresh = function () {
        return registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
      };
      return old && !sameKey(old, key) ? old.unsubscribe().then(fresh) : (old ? old : fresh());
    }).then(function (subscription) {
      return post(button.dataset.subscribeUrl, subscription.toJSON()).catch(function (problem) {
        return subscription.unsubscribe().then(function () { throw problem; });
      });
    });
  }

  function unsubscribe(registration) {
    return registration.pushManager.getSubscription().then(function (subscription) {
      if (!subscription) { return null; }
      return post(button.dataset.unsubscribeUrl, { endpoint: subscription.endpoint }).then(function () {
        return subscription.unsubscribe();
      });
    });
  }

  function failed(problem) {
    var text = (problem instanceof ServerMessage && problem.text) || button.dataset.textError;
    show("textError", subscribed, text);
    button.disabled = false;
  }

  /* A secure context whose service worker is refused: almost always a certificate error that the person
   * clicked through (the browser then loads pages, but never a service worker). */
  function refused(problem) {
    unavailable(problem && problem.name === "SecurityError" ? "textUntrusted" : "textUnavailable");
    return null;
  }

  registered.then(function () { return navigator.serviceWorker.ready; }, refused).then(function (registration) {
    if (!registration) { return null; }
    button.hidden = false;
    button.addEventListener("click", function () {
      button.disabled = true;
      (subscribed ? unsubscribe(registration) : subscribe(registration)).then(function () {
        show(subscribed ? "textOff" : "textOn", !subscribed);
        button.disabled = false;
      }).catch(failed);
    });
    if (window.Notification.permission === "denied") { show("textDenied", false); return null; }
    return registration.pushManager.getSubscription().then(function (subscription) {
      if (!subscription) { show("textOff", false); return null; }
      /* Send it again: the browser may have renewed it, or this is another site of the same person. */
      return post(button.dataset.subscribeUrl, subscription.toJSON()).then(function () { show("textOn", true); });
    });
  }).catch(failed);
})();
