// Passkeys: add one on the Passkeys page, sign in with one on the sign-in page.
// Both forms are rendered hidden with a "needs JavaScript" note; this script shows them
// only when the browser has WebAuthn. The server issues each challenge (into the session)
// and verifies each answer; this file only carries JSON between it and the browser.
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials) return;

  function b64urlToBuffer(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(base64 + "===".slice((base64.length + 3) % 4));
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }

  function bufferToB64url(buffer) {
    var bytes = new Uint8Array(buffer), raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function creationOptions(json) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    json.challenge = b64urlToBuffer(json.challenge);
    json.user.id = b64urlToBuffer(json.user.id);
    (json.excludeCredentials || []).forEach(function (c) { c.id = b64urlToBuffer(c.id); });
    return json;
  }

  function requestOptions(json) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    json.challenge = b64urlToBuffer(json.challenge);
    (json.allowCredentials || []).forEach(function (c) { c.id = b64urlToBuffer(c.id); });
    return json;
  }

  function credentialJSON(credential) {
    if (typeof credential.toJSON === "function") return credential.toJSON();
    var r = credential.response, out = {};
    ["clientDataJSON", "attestationObject", "authenticatorData", "signature", "userHandle"]
      .forEach(function (name) { if (r[name]) out[name] = bufferToB64url(r[name]); });
    if (r.getTransports) out.transports = r.getTransports();
    return {id: credential.id, rawId: bufferToB64url(credential.rawId), type: credential.type,
            response: out, clientExtensionResults: credential.getClientExtensionResults(),
            authenticatorAttachment: credential.authenticatorAttachment};
  }

  function post(form, url, body) {
    var token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
    return fetch(url, {method: "POST", credentials: "same-origin",
                       headers: {"Content-Type": "application/json", "X-CSRFToken": token},
                       body: body === undefined ? "{}" : JSON.stringify(body)})
      .then(function (response) {
        return response.json().catch(function () { return {ok: false}; });
      });
  }

  function say(box, data) {
    box.textContent = data.title ? data.title + ". " + data.message
      : "That did not work. Please try again, or use the email link.";
  }

  // The browser's own refusals (the person cancelled, no passkey here): calm words.
  function sayBrowserError(box, error) {
    box.textContent = error && error.name === "NotAllowedError"
      ? "No passkey was used. Try again, or use the email link."
      : "This browser could not use a passkey here. Try again, or use the email link.";
  }

  function wire(form, ceremony, hooks) {
    hooks = hooks || {};
    var note = document.getElementById("passkey-needs-js");
    if (note) note.hidden = true;
    form.hidden = false;
    var box = form.querySelector(".passkey-error");
    var button = form.querySelector("button[type=submit]");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      box.textContent = "";
      button.disabled = true;
      if (hooks.before) hooks.before();
      post(form, form.getAttribute("data-options-url"))
        .then(function (options) { return ceremony(options); })
        .then(function (body) { return post(form, form.getAttribute("data-url"), body); },
              function (error) { sayBrowserError(box, error); return null; })
        .then(function (data) {
          if (data !== null && data.ok) { window.location.assign(data.redirect); return; }
          if (data !== null) say(box, data);
          if (hooks.after) hooks.after();
        })
        .finally(function () { button.disabled = false; });
    });
  }

  var add = document.getElementById("passkey-add");
  if (add) {
    wire(add, function (options) {
      return navigator.credentials.create({publicKey: creationOptions(options)})
        .then(function (credential) {
          return {credential: credentialJSON(credential),
                  name: add.querySelector("input[name=name]").value};
        });
    });
  }

  var signin = document.getElementById("passkey-signin");
  if (signin) {
    var next = function () { return signin.querySelector("input[name=next]").value; };
    // Autofill (WebAuthn conditional mediation): the browser lists this site's passkeys
    // among the email field's suggestions; picking one signs in. The request waits in the
    // background, so it is aborted before the button starts a request of its own (one
    // request at a time) and started again if the button's attempt does not sign in.
    var waiting = null;
    var autofill = function () {
      var field = document.querySelector("input[autocomplete~=webauthn]");
      if (!field || !PublicKeyCredential.isConditionalMediationAvailable) return;
      PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
        if (!available) return;
        waiting = new AbortController();
        var signal = waiting.signal;
        post(signin, signin.getAttribute("data-options-url"))
          .then(function (options) {
            return navigator.credentials.get({mediation: "conditional", signal: signal,
                                              publicKey: requestOptions(options)});
          })
          .then(function (credential) {
            return post(signin, signin.getAttribute("data-url"),
                        {credential: credentialJSON(credential), next: next()});
          })
          .then(function (data) {
            if (data.ok) { window.location.assign(data.redirect); return; }
            say(signin.querySelector(".passkey-error"), data);
          }, function () { /* aborted, or nothing picked: the page stays as it is */ });
      });
    };
    wire(signin, function (options) {
      return navigator.credentials.get({publicKey: requestOptions(options)})
        .then(function (credential) {
          return {credential: credentialJSON(credential), next: next()};
        });
    }, {before: function () { if (waiting) waiting.abort(); waiting = null; },
        after: autofill});
    // Started when the person first reaches the email field, not on page load: a visitor
    // who only looks at the sign-in page gets no challenge, so no session is stored.
    var field = document.querySelector("input[autocomplete~=webauthn]");
    if (field) field.addEventListener("focus", autofill, {once: true});
  }
})();
