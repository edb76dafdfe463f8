/* Passkeys (WebAuthn) for forms marked data-webauthn="create" (add one) or "get" (sign in with one).
 *
 * On submit: fetch the options from data-options-url (POST, with the form's CSRF token: the CSRF
 * cookie is HttpOnly), ask the browser, put the answer into the form's hidden "credential" field
 * and submit the form for real. The server keeps the challenge; nothing travels in a URL.
 * Such forms start hidden and appear only where the browser can do WebAuthn. No inline scripts (CSP).
 */
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials) { return; }

  function toBuffer(base64url) {
    var base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) { base64 += "="; }
    var binary = window.atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i += 1) { bytes[i] = binary.charCodeAt(i); }
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i += 1) { binary += String.fromCharCode(bytes[i]); }
    return window.btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decodeDescriptors(list) {
    (list || []).forEach(function (descriptor) { descriptor.id = toBuffer(descriptor.id); });
  }

  function creationOptions(options) {
    options.challenge = toBuffer(options.challenge);
    options.user.id = toBuffer(options.user.id);
    decodeDescriptors(options.excludeCredentials);
    return options;
  }

  function requestOptions(options) {
    options.challenge = toBuffer(options.challenge);
    decodeDescriptors(options.allowCredentials);
    return options;
  }

  function credentialJSON(credential) {
    var response = credential.response;
    var json = {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      response: { clientDataJSON: toBase64url(response.clientDataJSON) }
    };
    if (response.attestationObject) {
      json.response.attestationObject = toBase64url(response.attestationObject);
      json.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      json.response.authenticatorData = toBase64url(response.authenticatorData);
      json.response.signature = toBase64url(response.signature);
      json.response.userHandle = response.userHandle ? toBase64url(response.userHandle) : null;
    }
    return JSON.stringify(json);
  }

  function ServerMessage(text) { this.text = text; }

  function fetchOptions(form) {
    var token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
    return window.fetch(form.dataset.optionsUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": token, "Accept": "application/json" }
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) { throw new ServerMessage(body.detail || ""); }
        return body;
      });
    });
  }

  document.querySelectorAll("[data-webauthn-unsupported]").forEach(function (note) { note.hidden = true; });

  document.querySelectorAll("form[data-webauthn]").forEach(function (form) {
    var error = form.querySelector("[data-webauthn-error]");
    var creating = form.dataset.webauthn === "create";
    form.hidden = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = event.submitter || form.querySelector("button[type=submit]");
      error.hidden = true;
      button.disabled = true;
      fetchOptions(form).then(function (options) {
        return creating ? navigator.credentials.create({ publicKey: creationOptions(options) })
                        : navigator.credentials.get({ publicKey: requestOptions(options) });
      }).then(function (credential) {
        form.querySelector("input[name=credential]").value = credentialJSON(credential);
        form.submit();  // submit() does not fire "submit" again
      }).catch(function (problem) {
        error.textContent = (problem instanceof ServerMessage && problem.text) || form.dataset.error;
        error.hidden = false;
        button.disabled = false;
      });
    });
  });
})();
