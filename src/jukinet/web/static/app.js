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

  // Errors where the eye is (issue 19): a page re-rendered with an error summary takes focus.
  // G5 witnessed maintenance (ADR 0041): the contractor by password + one-time password, the
  // witnessing staff member by fingerprint, sent together
  function wireMaintenance(form) {
    const btn = form.querySelector("#witness-fingerprint"); if (!btn) return;
    btn.addEventListener("click", async () => {
      btn.disabled = true;
      try {
        const r = await postJSON(form.dataset.optionsUrl, {operator_id: form.witness_operator_id.value});
        if (!r.ok) { showError(form, await errorText(r)); return; }
        const {challenge_id, publicKey} = await r.json();
        const cred = await navigator.credentials.get({publicKey: requestOptions(publicKey)});
        const v = await postJSON(form.dataset.verifyUrl, {
          contractor: {operator_id: form.contractor_operator_id.value, password: form.contractor_password.value,
                       totp: form.contractor_totp.value},
          witness: {challenge_id, credential: credJSON(cred)}});
        if (!v.ok) { showError(form, await errorText(v)); return; }
        location.assign((await v.json()).redirect || "/");
      } catch (e) { showError(form, "生体認証を完了できませんでした。もう一度お試しください。"); }
      finally { btn.disabled = false; }
    });
  }

  // A summary link whose field has another id on this screen goes to the control of that field's block.
  function focusErrorSummary() {
    const s = document.getElementById("error-summary"); if (!s) return;
    s.querySelectorAll("a[data-field]").forEach((a) => {
      if (document.getElementById(a.getAttribute("href").slice(1))) return;
      const block = document.querySelector('.form-field[data-field~="' + CSS.escape(a.dataset.field) + '"]');
      const control = block && block.querySelector("[aria-invalid=true], input, select, textarea");
      if (control && control.id) a.setAttribute("href", "#" + control.id);
    });
    s.focus();
  }

  // Print confirmation (issue 19, ADR 0048): a form marked data-print asks for a 帳票 (PDF). It is sent
  // by fetch; a PDF answer is saved as a file and the screen confirms 「帳票番号 X を発行しました」 with the
  // serial of the form register (the X-Form-Serial header). Any other answer (a page with the error at its
  // field, a notice) replaces the page's main area; a lost network is shown. Without script the form
  // posts as before and the PDF (named by its 帳票番号) is downloaded.
  function printConfirmed(serial, file) {
    let box = document.getElementById("print-notice");
    if (!box) {
      box = document.createElement("div");
      box.id = "print-notice"; box.className = "notification-banner notification-banner--success notice";
      box.setAttribute("role", "status"); box.tabIndex = -1;
      const main = document.getElementById("main"); (main || document.body).prepend(box);
    }
    const p = document.createElement("p");
    p.append("帳票番号 ");
    const b = document.createElement("b"); b.id = "print-serial"; b.textContent = serial; p.append(b);
    p.append(" を発行しました。");
    const q = document.createElement("p"); q.className = "hint";
    q.textContent = "PDF (" + file + ") を保存しました。印刷した帳票は帳票管理簿に記録されています。";
    const a = document.createElement("a"); a.href = "/disclosure/forms"; a.textContent = "帳票管理簿を見る";
    q.append(" "); q.append(a);
    box.replaceChildren(p, q); box.dataset.serial = serial; box.hidden = false;
    box.focus();
  }

  function wirePrint(form) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const btn = form.querySelector("button[type=submit], button:not([type])"); if (btn) btn.disabled = true;
      const old = document.getElementById("print-notice"); if (old) old.hidden = true;
      try {
        const r = await fetch(form.action, {method: "POST", credentials: "same-origin", body: new FormData(form)});
        const type = r.headers.get("Content-Type") || "";
        const serial = r.headers.get("X-Form-Serial");
        if (r.ok && type.includes("application/pdf")) {
          const blob = await r.blob();
          const file = (serial || "form") + ".pdf";
          const url = URL.createObjectURL(blob);
          const a = document.createElement("a"); a.href = url; a.download = file; a.hidden = true;
          document.body.appendChild(a); a.click(); a.remove();
          setTimeout(() => URL.revokeObjectURL(url), 60000);
          if (serial) printConfirmed(serial, file);
          return;
        }
        const text = await r.text();
        const doc = new DOMParser().parseFromString(text, "text/html");
        const fresh = doc.getElementById("main"), main = document.getElementById("main");
        if (type.includes("html") && fresh && main) {
          main.replaceChildren(...Array.from(fresh.childNodes).map((n) => document.importNode(n, true)));
          main.querySelectorAll("form[data-print]").forEach(wirePrint);
          if (window.htmx) htmx.process(main);
          focusErrorSummary();
          const m = main.querySelector("#error-summary, #message"); if (m && !document.getElementById("error-summary")) m.focus();
          return;
        }
        const p = problemOf({status: r.status, responseText: text, getResponseHeader: (h) => r.headers.get(h)});
        showProblem(p.message, p.code);
      } catch (e) {
        showProblem("サーバに接続できませんでした。ネットワークの接続を確認して、もう一度お試しください。", "NETWORK_ERROR");
      } finally { if (btn) btn.disabled = false; }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const login = document.getElementById("webauthn-login"); if (login) wireLogin(login);
    const enroll = document.getElementById("webauthn-enroll"); if (enroll) wireEnroll(enroll);
    const maint = document.getElementById("maintenance-login"); if (maint) wireMaintenance(maint);
    document.querySelectorAll("form[data-print]").forEach(wirePrint);
    wireIdleLock();
    focusErrorSummary();
  });

  // htmx: no silent failure. An expired/locked session answers with HX-Redirect. An error answer
  // (400, 409, 413, 422 …) that carries the element being swapped (a form re-rendered with its
  // errors next to the fields) is swapped like a success; any other failure — a refusal page, a 5xx,
  // a lost network, a timeout — is shown in an error summary at the top of the page, with the
  // server's coded Japanese message when it sent one.
  const STATUS_TEXT = {
    400: "入力内容を確認してください。送信した内容では処理できませんでした。",
    401: "ログインし直してください。", 403: "この操作を行う権限がありません。", 404: "対象が見つかりません。",
    409: "ほかの操作と重なったため、処理できませんでした。画面を開き直してください。",
    413: "送信したデータが大きすぎます。", 422: "入力の形式が正しくありません。",
    429: "操作が集中しています。しばらくしてからもう一度お試しください。",
  };
  const SERVER_TEXT = "サーバで障害が発生したため、処理を完了できませんでした。しばらくしてからもう一度お試しください。解決しない場合はシステム管理者に連絡してください。";

  function problemOf(xhr) {
    let message = null, code = null;
    const type = xhr.getResponseHeader("Content-Type") || "";
    try {
      if (type.includes("json")) {
        const j = JSON.parse(xhr.responseText); message = j.error && j.error.message; code = j.error && j.error.code;
      } else if (type.includes("html")) {
        const doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
        const m = doc.querySelector("#error-summary, #message");
        if (m) { message = (m.querySelector("li") || m).textContent.trim(); code = m.dataset.code || null; }
      }
    } catch (e) { /* not a page of ours: the generic text below */ }
    if (!message) message = xhr.status >= 500 ? SERVER_TEXT : (STATUS_TEXT[xhr.status] || "処理を完了できませんでした。");
    return {message, code: code || ("HTTP_" + xhr.status)};
  }

  function showProblem(message, code) {
    let box = document.getElementById("request-error");
    if (!box) {
      box = document.createElement("div");
      box.id = "request-error"; box.className = "error-summary"; box.tabIndex = -1;
      box.setAttribute("role", "alert"); box.setAttribute("aria-labelledby", "request-error-title");
      const main = document.getElementById("main"); (main || document.body).prepend(box);
    }
    const h = document.createElement("h2"); h.id = "request-error-title"; h.textContent = "処理を完了できませんでした";
    const p = document.createElement("p"); p.id = "request-error-message"; p.textContent = message;
    const c = document.createElement("p"); c.className = "error-code"; c.textContent = "問い合わせ用コード: ";
    const k = document.createElement("code"); k.textContent = code; c.appendChild(k);
    box.replaceChildren(h, p, c); box.dataset.code = code; box.hidden = false;
    box.focus();
  }

  document.addEventListener("htmx:beforeRequest", () => {
    const box = document.getElementById("request-error"); if (box) box.hidden = true;
  });
  document.addEventListener("htmx:beforeSwap", (ev) => {
    const xhr = ev.detail.xhr;
    if (!xhr || xhr.status < 400) return;
    const target = ev.detail.target;
    if (target && target.id && xhr.status < 500) {
      const doc = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
      if (doc.getElementById(target.id)) { ev.detail.shouldSwap = true; ev.detail.isError = false; return; }
    }
    ev.detail.shouldSwap = false;
    const p = problemOf(xhr); showProblem(p.message, p.code);
  });
  document.addEventListener("htmx:afterSettle", focusErrorSummary);
  document.addEventListener("htmx:sendError", () => showProblem(
    "サーバに接続できませんでした。ネットワークの接続を確認して、もう一度お試しください。", "NETWORK_ERROR"));
  document.addEventListener("htmx:timeout", () => showProblem(
    "サーバから応答がありませんでした。もう一度お試しください。", "TIMEOUT"));
})();
