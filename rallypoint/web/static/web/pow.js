/* Proof of work for sign-in forms (ALTCHA PoW v2, PBKDF2/SHA-256, counter as big-endian uint32).
   Finds the counter whose derived key starts with the challenge's key prefix, then puts the
   base64-encoded {challenge, solution} into the form's hidden "altcha" field. */
(function () {
  "use strict";

  function hexToBytes(hex) {
    var out = new Uint8Array(hex.length / 2);
    for (var i = 0; i < out.length; i += 1) { out[i] = parseInt(hex.substr(i * 2, 2), 16); }
    return out;
  }

  function bytesToHex(bytes) {
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  async function derive(params, nonce, salt, counter) {
    var password = new Uint8Array(nonce.length + 4);
    password.set(nonce);
    new DataView(password.buffer).setUint32(nonce.length, counter, false);
    var key = await crypto.subtle.importKey("raw", password, "PBKDF2", false, ["deriveBits"]);
    var bits = await crypto.subtle.deriveBits(
      { name: "PBKDF2", hash: "SHA-256", salt: salt, iterations: params.cost }, key, params.keyLength * 8);
    return bytesToHex(new Uint8Array(bits));
  }

  async function solve(challenge) {
    var params = challenge.parameters;
    var nonce = hexToBytes(params.nonce);
    var salt = hexToBytes(params.salt);
    var prefix = params.keyPrefix.toLowerCase();
    var started = performance.now();
    for (var counter = 0; counter <= 0xffffffff; counter += 1) {
      var derived = await derive(params, nonce, salt, counter);
      if (derived.indexOf(prefix) === 0) {
        return { counter: counter, derivedKey: derived, time: Math.round(performance.now() - started) };
      }
    }
    return null;
  }

  document.querySelectorAll("form[data-pow-challenge]").forEach(function (form) {
    var field = form.querySelector("input[name=altcha]");
    var status = form.querySelector("[data-pow-status]");
    var button = form.querySelector("button[type=submit]");
    var challenge = JSON.parse(form.dataset.powChallenge);
    button.disabled = true;
    solve(challenge).then(function (solution) {
      field.value = btoa(JSON.stringify({ challenge: challenge, solution: solution }));
      form.dataset.powSolved = "true";
      if (status) { status.textContent = status.dataset.done; }
      button.disabled = false;
    }).catch(function () {
      if (status) { status.textContent = status.dataset.failed; }
    });
  });
})();
