// jukinet operator terminal: WebAuthn ceremonies, the idle lock (A6), CSRF header for fetch.
(function () {
  "use strict";
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  async function postJSON(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()},
      body: JSON.stringify(body),
    });
  }

  // base64url <-> ArrayBuffer (fallback where parse*OptionsFromJSON / toJSON are missing)
  const b64uToBuf = (s) => {
    s = s.replace(/-/g, "+").replace(/_/g, "/"); while (s.length % 4) s += "=";
    return Uint8Array.from(atob(s), (c) => c.charCodeAt(0)).buffer;
  };
  const bufToB64u = (b) => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  function creationOptions(o) {
    if (window.PublicKeyCredential && PublicKeyCredential.parseCreationOptionsFromJSON) return PublicKeyCredential.parseCreationOptionsFromJSON(o);
    return Object.assign({}, o, {challenge: b64uToBuf(o.challenge), user: Object.assign({}, o.user, {id: b64uToBuf(o.user.id)}),
      excludeCredentials: (o.excludeCredentials || []).map((c) => Object.assign({}, c, {id: b64uToBuf(c.id)}))});
  }
  function requestOptions(o) {
    if (window.PublicKeyCredential && PublicKeyCredential.parseRequestOptionsFromJSON) return PublicKeyCredential.parseRequestOptionsFromJSON(o);
    return Object.assign({}, o, {challenge: b64uToBuf(o.challenge),
      allowCredentials: (o.allowCredentials || []).map((c) => Object.assign({}, c, {id: b64uToBuf(c.id)}))});
  }
  function credJSON(c) {
    if (c.toJSON) return c.toJSON();
    const r = c.response, out = {id: c.id, rawId: bufToB64u(c.rawId), type: c.type, clientExtensionResults: c.getClientExtensionResults(), response: {clientDataJSON: bufToB64u(r.clientDataJSON)}};
    if (r.attestationObject) { out.response.attestationObject = bufToB64u(r.attestationObject); out.response.transports = r.getTransports ? r.getTransports() : []; }
    if (r.authenticatorData) { out.response.authenticatorData = bufToB64u(r.authenticatorData); out.response.signature = bufToB64u(r.signature); if (r.userHandle) out.response.userHandle = bufToB64u(r.userHandle); }
    return out;
  }
  async function errorText(r) {
    try { const j = await r.json(); return (j.error && j.error.message) || "認証できませんでした。"; } catch (e) { return "認証できませんでした。"; }
  }
  function showError(form, text) {
    const el = form.querySelector("#webauthn-error"); if (el) { el.textContent = text; el.hidden = false; }
  }

  function wireLogin(form) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const btn = form.querySelector("button"); btn.disabled = true;
      try {
        const r = await postJSON(form.dataset.optionsUrl, {operator_id: form.operator_id.value});
        if (!r.ok) { showError(form, await errorText(r)); return; }
        const {challenge_id, publicKey} = await r.json();
        const cred = await navigator.credentials.get({publicKey: requestOptions(publicKey)});
        const v = await postJSON(form.dataset.verifyUrl, {challenge_id, credential: credJSON(cred)});
        if (!v.ok) { showError(form, await errorText(v)); return; }
        location.assign((await v.json()).redirect || "/");
      } catch (e) { showError(form, "生体認証を完了できませんでした。もう一度お試しください。"); }
      finally { btn.disabled = false; }
    });
  }

  function wireEnroll(form) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const btn = form.querySelector("button"); btn.disabled = true;
      try {
        const token = form.token.value;
        const r = await postJSON(form.dataset.optionsUrl, {token});
        if (!r.ok) { showError(form, await errorText(r)); return; }
        const {challenge_id, publicKey} = await r.json();
        const cred = await navigator.credentials.create({publicKey: creationOptions(publicKey)});
        const v = await postJSON(form.dataset.verifyUrl, {token, challenge_id, credential: credJSON(cred)});
        if (!v.ok) { showError(form, await errorText(v)); return; }
        form.hidden = true; document.getElementById("enroll-done").hidden = false;
      } catch (e) { showError(form, "生体認証の登録を完了できませんでした。"); btn.disabled = false; }
    });
  }

  // A6: after idle-seconds without keyboard/mouse input, blank the page and lock the session.
  function wireIdleLock() {
    const secs = parseInt(document.body.dataset.idleSeconds || "0", 10);
    if (!secs) return;
    let last = Date.now(), lastTouch = Date.now(), locked = false;
    const activity = () => { last = Date.now(); };
    ["keydown", "mousedown", "mousemove", "wheel", "touchstart", "focusin"].forEach((e) => document.addEventListener(e, activity, {passive: true}));
    setInterval(() => {
      const now = Date.now();
      if (locked) return;
      if (now - last >= secs * 1000) {
        locked = true;
        const main = document.getElementById("main"); if (main) main.innerHTML = "";   // no personal data left on screen
        document.querySelectorAll(".pd").forEach((el) => el.remove());
        document.getElementById("lock-overlay").hidden = false;
        fetch("/lock", {method: "POST", credentials: "same-origin", keepalive: true, headers: {"X-CSRF-Token": csrf()}})
          .finally(() => location.replace(document.body.dataset.lockUrl || "/lock"));
      } else if (last > lastTouch && now - lastTouch > Math.min(60, secs / 2) * 1000) {
        // the operator is active without requests: keep the server's idle clock in step
        lastTouch = now;
        fetch("/session/touch", {method: "POST", credentials: "same-origin", headers: {"X-CSRF-Token": csrf()}});
      }
    }, 500);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const login = document.getElementById("webauthn-login"); if (login) wireLogin(login);
    const enroll = document.getElementById("webauthn-enroll"); if (enroll) wireEnroll(enroll);
    wireIdleLock();
  });
  // htmx: an expired/locked session answers with HX-Redirect; make refusals visible too
  document.addEventListener("htmx:responseError", (ev) => {
    const t = document.getElementById("results");
    if (t && ev.detail.xhr.status === 403) t.innerHTML = '<p class="error" role="alert">この操作を行う権限がありません。</p>';
  });
})();
