// Passkeys on the sign-in page and on /me (coop/passkeys.py): the two WebAuthn ceremonies, as
// JSON with the routes of server/web/pages/passkeys.py. No library: the browser's own
// navigator.credentials, with its binary fields carried as base64url.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("passkey-config").textContent);
  var status = document.getElementById("passkey-status");

  function say(text) {
    if (status) { status.textContent = text; }
  }

  function toBytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) { base64 += "="; }
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { bytes[i] = binary.charCodeAt(i); }
    return bytes.buffer;
  }

  function fromBytes(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) { binary += String.fromCharCode(bytes[i]); }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function Refusal(type) { this.type = type; }

  async function post(url, body) {
    var response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": config.csrf },
      body: JSON.stringify(body || {})
    });
    var data = {};
    try { data = await response.json(); } catch (ignored) { data = {}; }
    if (!response.ok) { throw new Refusal(data.type || "other"); }
    return data;
  }

  function explain(error) {
    if (error instanceof Refusal) { return config.texts[error.type] || config.texts.other; }
    if (error && (error.name === "NotAllowedError" || error.name === "AbortError")) {
      return config.texts.cancelled;
    }
    return config.texts.other;
  }

  function credentialJSON(credential) {
    var response = credential.response;
    var out = {
      id: credential.id,
      rawId: fromBytes(credential.rawId),
      type: credential.type,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: { clientDataJSON: fromBytes(response.clientDataJSON) }
    };
    if (credential.authenticatorAttachment) {
      out.authenticatorAttachment = credential.authenticatorAttachment;
    }
    if (response.attestationObject) {
      out.response.attestationObject = fromBytes(response.attestationObject);
      out.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      out.response.authenticatorData = fromBytes(response.authenticatorData);
      out.response.signature = fromBytes(response.signature);
      if (response.userHandle) { out.response.userHandle = fromBytes(response.userHandle); }
    }
    return out;
  }

  var signIn = document.getElementById("passkey-signin");
  var addForm = document.getElementById("passkey-add");
  if (!window.PublicKeyCredential) {
    if (signIn) { signIn.hidden = true; }
    if (addForm) { addForm.hidden = true; }
    say(config.texts.unsupported);
    return;
  }

  if (signIn) {
    signIn.addEventListener("click", async function () {
      say(config.texts.working);
      try {
        var options = await post("/signin/passkey/options");
        var publicKey = options.publicKey;
        publicKey.challenge = toBytes(publicKey.challenge);
        (publicKey.allowCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
        var credential = await navigator.credentials.get({ publicKey: publicKey });
        var done = await post("/signin/passkey", {
          ceremony: options.ceremony, credential: credentialJSON(credential), next: config.next
        });
        window.location.assign(done.next);
      } catch (error) {
        say(explain(error));
      }
    });
  }

  if (addForm) {
    addForm.addEventListener("submit", async function (event) {
      event.preventDefault();
      say(config.texts.working);
      try {
        var options = await post("/me/passkeys/options");
        var publicKey = options.publicKey;
        publicKey.challenge = toBytes(publicKey.challenge);
        publicKey.user.id = toBytes(publicKey.user.id);
        (publicKey.excludeCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
        var credential = await navigator.credentials.create({ publicKey: publicKey });
        await post("/me/passkeys", {
          ceremony: options.ceremony,
          credential: credentialJSON(credential),
          name: document.getElementById("passkey-name").value
        });
        say(config.texts.added);
        window.location.reload();
      } catch (error) {
        say(explain(error));
      }
    });
  }
})();
