/*!
 * eCRM live chat widget. No dependencies, no CDN.
 *
 *   <script src="https://crm.example/connect/chat/widget.js" data-inbox="3" async></script>
 *   (a signed-in portal customer: add data-customer-token="…" from identity.sign_customer)
 *
 * Flow: GET /connect/chat/config (online? texts) -> pre-chat form -> POST /connect/chat/session (a
 * signed session token, kept in localStorage) -> WebSocket /ws/chat/, first frame {"type":"auth"}.
 * Messages not yet acknowledged stay in an outbox and are resent after a reconnect (the server stores
 * a resend once, by client_id). With no agent online the widget shows an offline form instead, which
 * POSTs /connect/chat/offline (an email conversation). All text from the server is set with
 * textContent, never as HTML.
 */
(function (window, document) {
  "use strict";

  var script = document.currentScript || (function () {
    var all = document.querySelectorAll("script[data-inbox]");
    return all[all.length - 1];
  })();
  if (!script || window.__ecrmChatLoaded) return;
  window.__ecrmChatLoaded = true;

  var base = new URL(script.src, window.location.href);
  var ORIGIN = base.origin;
  var INBOX = script.getAttribute("data-inbox");
  var CUSTOMER_TOKEN = script.getAttribute("data-customer-token") || "";
  var STORE = "ecrm_chat_" + INBOX + (CUSTOMER_TOKEN ? "_c" : "");
  var AID_COOKIE = "ecrm_aid";
  var TYPING_EVERY = 2000;

  // --- the tracker's anonymous id (same cookie as static/ecrm/js/tracker.js) ---------------------
  function uuid() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (c) {
      var r = Math.random() * 16 | 0;
      return (c === "x" ? r : (r & 0x3 | 0x8)).toString(16);
    });
  }
  function readCookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) return decodeURIComponent(parts[i].slice(eq + 1));
    }
    return null;
  }
  function anonymousId() {
    var aid = readCookie(AID_COOKIE);
    if (!aid) {
      aid = uuid();
      var secure = window.location.protocol === "https:" ? "; Secure" : "";
      document.cookie = AID_COOKIE + "=" + encodeURIComponent(aid) + "; Max-Age=31536000; Path=/; SameSite=Lax" + secure;
    }
    return aid;
  }

  function load(key) { try { return JSON.parse(window.localStorage.getItem(key) || "null"); } catch (e) { return null; } }
  function save(key, value) { try { window.localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* private mode */ } }
  function forget(key) { try { window.localStorage.removeItem(key); } catch (e) { /* private mode */ } }

  function post(path, body) {
    // text/plain: a "simple" cross-origin request, no preflight
    return fetch(ORIGIN + path, { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "text/plain" } })
      .then(function (r) { return r.json().then(function (data) { return { ok: r.ok, status: r.status, data: data }; }); });
  }

  // --- state -----------------------------------------------------------------------------------
  var state = {
    config: null, token: null, ws: null, open: false, connected: false, retry: 1000,
    outbox: [], seen: {}, lastTyping: 0, typingTimer: null, view: null
  };
  var S = {}; // texts from the server, translated

  function t(key, vars) {
    var text = S[key] || key;
    if (vars) for (var k in vars) text = text.replace("%(" + k + ")s", vars[k]);
    return text;
  }

  // --- DOM (in a shadow root: the shop's CSS cannot break the widget, nor ours the shop) ----------
  var host = document.createElement("div");
  host.id = "ecrm-chat";
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  var ui = {};

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "className") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  function build() {
    var css = el("link", { rel: "stylesheet", href: ORIGIN + "/connect/chat/widget.css" });
    ui.launcher = el("button", { type: "button", className: "launcher", "aria-expanded": "false", text: t("open") });
    ui.title = el("strong", { text: state.config.title });
    ui.close = el("button", { type: "button", className: "close", "aria-label": t("close"), text: "×" });
    ui.greeting = el("p", { className: "greeting", text: state.config.greeting || "" });

    ui.prechat = el("form", { className: "prechat", novalidate: "" }, [
      el("label", {}, [el("span", { text: t("name") }), el("input", { name: "name", autocomplete: "name", maxlength: "100" })]),
      el("label", {}, [el("span", { text: state.config.require_email ? t("email") : t("email_optional") }),
        el("input", { name: "email", type: "email", autocomplete: "email", maxlength: "254" })]),
      el("p", { className: "form-error", role: "alert" }),
      el("button", { type: "submit", className: "primary", text: t("start") })
    ]);
    if (state.config.require_email) ui.prechat.elements.email.required = true;

    ui.messages = el("div", { className: "messages", role: "log", "aria-live": "polite" });
    ui.typing = el("p", { className: "typing", hidden: "" });
    ui.status = el("p", { className: "status", role: "status" });
    ui.body = el("textarea", { name: "body", rows: "2", placeholder: t("placeholder"), "aria-label": t("message"),
      maxlength: String(state.config.max_message_chars) });
    ui.composer = el("form", { className: "composer" }, [ui.body, el("button", { type: "submit", className: "primary", text: t("send") })]);
    ui.chat = el("section", { className: "chat" }, [ui.messages, ui.typing, ui.status, ui.composer]);

    ui.offline = el("form", { className: "offline", novalidate: "" }, [
      el("p", { className: "offline-title", text: t("offline_title") }),
      el("p", { text: t("offline_intro") }),
      el("label", {}, [el("span", { text: t("name") }), el("input", { name: "name", autocomplete: "name", maxlength: "100" })]),
      el("label", {}, [el("span", { text: t("email") }), el("input", { name: "email", type: "email", required: "", autocomplete: "email" })]),
      el("label", {}, [el("span", { text: t("message") }), el("textarea", { name: "body", rows: "4", required: "",
        maxlength: String(state.config.max_message_chars) })]),
      el("p", { className: "form-error", role: "alert" }),
      el("button", { type: "submit", className: "primary", text: t("offline_send") })
    ]);
    ui.thanks = el("p", { className: "thanks", hidden: "", text: t("offline_thanks") });

    ui.panel = el("div", { className: "panel", role: "dialog", "aria-label": state.config.title, hidden: "" }, [
      el("header", {}, [ui.title, ui.close]), ui.greeting, ui.prechat, ui.chat, ui.offline, ui.thanks
    ]);
    root.appendChild(css);
    root.appendChild(ui.launcher);
    root.appendChild(ui.panel);
    document.body.appendChild(host);

    ui.launcher.addEventListener("click", function () { toggle(!state.open); });
    ui.close.addEventListener("click", function () { toggle(false); });
    ui.prechat.addEventListener("submit", onPrechat);
    ui.offline.addEventListener("submit", onOffline);
    ui.composer.addEventListener("submit", function (ev) { ev.preventDefault(); sendMessage(); });
    ui.body.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); sendMessage(); }
    });
    ui.body.addEventListener("input", onTyping);
  }

  function show(view) {
    state.view = view;
    ui.prechat.hidden = view !== "prechat";
    ui.chat.hidden = view !== "chat";
    ui.offline.hidden = view !== "offline";
    ui.thanks.hidden = view !== "thanks";
    ui.greeting.hidden = view === "offline" || view === "thanks" || !state.config.greeting;
    host.setAttribute("data-view", view);
  }

  function toggle(open) {
    state.open = open;
    ui.panel.hidden = !open;
    ui.launcher.setAttribute("aria-expanded", String(open));
    if (!open) return;
    if (state.token) { show("chat"); connect(); markSeen(); ui.body.focus(); }
    else if (state.config.online) { show("prechat"); }
    else { show("offline"); }
  }

  function formError(form, text) { form.querySelector(".form-error").textContent = text || ""; }

  function showErrors(form, data) {
    // the server names the bad fields: mark them so a screen reader and the eye find them
    Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (n) { n.removeAttribute("aria-invalid"); });
    for (var name in (data && data.fields) || {}) {
      var field = form.elements[name];
      if (field && field.setAttribute) field.setAttribute("aria-invalid", "true");
    }
    formError(form, (data && data.message) || t("error"));
  }

  // --- pre-chat and offline forms --------------------------------------------------------------
  function onPrechat(ev) {
    ev.preventDefault();
    var f = ui.prechat.elements;
    formError(ui.prechat, "");
    post("/connect/chat/session", {
      inbox: INBOX, anonymous_id: anonymousId(), name: f.name.value, email: f.email.value, customer_token: CUSTOMER_TOKEN
    }).then(function (r) {
      if (!r.ok) { showErrors(ui.prechat, r.data); return; }
      state.token = r.data.token;
      save(STORE, { token: r.data.token });
      show("chat");
      connect();
      ui.body.focus();
    }).catch(function () { formError(ui.prechat, t("error")); });
  }

  function onOffline(ev) {
    ev.preventDefault();
    var f = ui.offline.elements;
    formError(ui.offline, "");
    post("/connect/chat/offline", {
      inbox: INBOX, anonymous_id: anonymousId(), name: f.name.value, email: f.email.value, body: f.body.value,
      customer_token: CUSTOMER_TOKEN
    }).then(function (r) {
      if (!r.ok) { showErrors(ui.offline, r.data); return; }
      ui.offline.reset();
      show("thanks");
    }).catch(function () { formError(ui.offline, t("error")); });
  }

  // --- the socket ------------------------------------------------------------------------------
  function connect() {
    if (state.ws || !state.token || !("WebSocket" in window)) return;
    var ws = new WebSocket(ORIGIN.replace(/^http/, "ws") + "/ws/chat/");
    state.ws = ws;
    ws.onopen = function () { ws.send(JSON.stringify({ type: "auth", token: state.token })); };
    ws.onmessage = function (msg) {
      var data;
      try { data = JSON.parse(msg.data); } catch (e) { return; }
      onFrame(data);
    };
    ws.onclose = function (ev) {
      state.ws = null;
      state.connected = false;
      host.setAttribute("data-connected", "false");
      if (ev.code === 4401 || ev.code === 4403) {
        // the session token is no longer valid: start over with the pre-chat form
        state.token = null;
        forget(STORE);
        if (state.open) show(state.config.online ? "prechat" : "offline");
        return;
      }
      ui.status.textContent = t("reconnecting");
      setTimeout(connect, state.retry);
      state.retry = Math.min(state.retry * 2, 30000);
    };
  }

  function wsSend(frame) {
    if (state.ws && state.connected) { state.ws.send(JSON.stringify(frame)); return true; }
    return false;
  }

  function onFrame(data) {
    switch (data.type) {
      case "hello":
        state.connected = true;
        state.retry = 1000;
        host.setAttribute("data-connected", "true");
        ui.status.textContent = "";
        (data.messages || []).forEach(renderMessage);
        state.outbox.forEach(function (item) { item.frame.resend = true; wsSend(item.frame); }); // never acknowledged
        if (state.open) markSeen();
        break;
      case "ack":
        var item = takeOutbox(data.client_id);
        if (item) { item.node.remove(); }
        renderMessage(data.message);
        break;
      case "message":
        renderMessage(data.message);
        if (data.message.direction === "out") { hideTyping(); if (state.open) markSeen(); }
        break;
      case "typing":
        showTyping(data.name);
        break;
      case "read":
        Array.prototype.forEach.call(ui.messages.querySelectorAll(".msg-in"), function (n) { n.classList.add("is-read"); });
        break;
      case "error":
        var failed = takeOutbox(data.client_id);
        if (failed) { failed.node.classList.add("failed"); failed.node.querySelector(".meta").textContent = t("not_sent"); }
        ui.status.textContent = data.message || t("error");
        host.setAttribute("data-error", data.code || "error");
        break;
    }
  }

  function takeOutbox(clientId) {
    for (var i = 0; i < state.outbox.length; i++) {
      if (state.outbox[i].frame.client_id === clientId) return state.outbox.splice(i, 1)[0];
    }
    return null;
  }

  function renderMessage(m) {
    if (!m || state.seen[m.id]) return;
    state.seen[m.id] = true;
    var who = m.direction === "out" ? (m.author || t("agent")) : "";
    var node = el("div", { className: "msg msg-" + m.direction + (m.read ? " is-read" : ""), "data-id": String(m.id) }, [
      who ? el("span", { className: "author", text: who }) : null,
      el("p", { className: "text", text: m.body }),
      el("span", { className: "meta", text: m.direction === "in" ? t("read") : "" })
    ]);
    ui.messages.appendChild(node);
    ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  function sendMessage() {
    var body = ui.body.value.trim();
    if (!body) return;
    ui.status.textContent = "";
    host.removeAttribute("data-error");
    var frame = { type: "message", body: body, client_id: uuid(), page: window.location.href };
    var node = el("div", { className: "msg msg-in pending" }, [
      el("p", { className: "text", text: body }), el("span", { className: "meta", text: t("sending") })
    ]);
    ui.messages.appendChild(node);
    ui.messages.scrollTop = ui.messages.scrollHeight;
    state.outbox.push({ frame: frame, node: node });
    ui.body.value = "";
    if (!wsSend(frame)) connect(); // sent from the outbox once the socket says hello
  }

  function onTyping() {
    var now = Date.now();
    if (now - state.lastTyping > TYPING_EVERY && wsSend({ type: "typing" })) state.lastTyping = now;
  }

  function showTyping(name) {
    ui.typing.textContent = t("typing", { name: name || t("agent") });
    ui.typing.hidden = false;
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(hideTyping, 4000);
  }
  function hideTyping() { ui.typing.hidden = true; clearTimeout(state.typingTimer); }

  function markSeen() { wsSend({ type: "seen" }); }

  // --- start -----------------------------------------------------------------------------------
  function start() {
    fetch(ORIGIN + "/connect/chat/config?inbox=" + encodeURIComponent(INBOX))
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (config) {
        if (!config) return;
        state.config = config;
        S = config.strings || {};
        var stored = load(STORE);
        state.token = stored && stored.token;
        build();
        host.setAttribute("data-online", String(config.online));
        if (state.token) connect(); // a chat already under way: receive replies even while closed
      })
      .catch(function () { /* the CRM is unreachable: the shop works without the chat */ });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})(window, document);
