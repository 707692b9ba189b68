/*!
 * eCRM browser tracker. No dependencies.
 *
 *   <script async src="https://crm.example/static/ecrm/js/tracker.js"
 *           data-key="ecrm_…tracking key…" data-endpoint="https://crm.example/api/v1/t"></script>
 *
 *   ecrm.page();                                   page view
 *   ecrm.track("Coupon applied", {code: "X"});     custom event
 *   ecrm.productView({sku, name, price, currency, category});
 *   ecrm.addToCart({sku, price, quantity});
 *   ecrm.checkout({order_id, total, currency, items});
 *   ecrm.identify("shop-user-42", {email, first_name});   or ecrm.identify({email})
 *   ecrm.reset();                                  on logout: forget the user and start a new visitor
 *
 * Calls made before this file loads are queued by the snippet (window.ecrm = [[method, args], …]).
 * Events are batched: sent every few seconds or when 20 are waiting, and with navigator.sendBeacon
 * when the page is hidden or unloaded. The visitor's anonymous id lives in a first-party cookie
 * (ecrm_aid, one year, SameSite=Lax). Bodies are text/plain so browsers send them cross-origin
 * without a CORS preflight.
 */
(function (window, document) {
  "use strict";

  var existing = window.ecrm;
  if (existing && existing.__loaded) return;

  var script =
    document.currentScript ||
    (function () {
      var all = document.querySelectorAll("script[data-key]");
      return all[all.length - 1];
    })();
  var attr = function (name, fallback) {
    var value = script && script.getAttribute(name);
    return value === null || value === undefined || value === "" ? fallback : value;
  };
  var scriptOrigin = script && script.src ? new URL(script.src, window.location.href).origin : window.location.origin;
  var config = {
    key: attr("data-key", ""),
    endpoint: attr("data-endpoint", scriptOrigin + "/api/v1/t"),
    flushMs: parseInt(attr("data-flush-ms", "3000"), 10),
    batchSize: parseInt(attr("data-batch-size", "20"), 10)
  };
  var MAX_QUEUE = 1000;
  var AID_COOKIE = "ecrm_aid";
  var UID_STORAGE = "ecrm_uid";

  function uuid() {
    var c = window.crypto;
    if (c && typeof c.randomUUID === "function") return c.randomUUID();
    var bytes = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(bytes);
    else for (var i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = [];
    for (var j = 0; j < 16; j++) hex.push((bytes[j] + 0x100).toString(16).slice(1));
    return hex.slice(0, 4).join("") + "-" + hex.slice(4, 6).join("") + "-" + hex.slice(6, 8).join("") + "-" +
      hex.slice(8, 10).join("") + "-" + hex.slice(10).join("");
  }

  function readCookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) return decodeURIComponent(parts[i].slice(eq + 1));
    }
    return null;
  }

  function writeCookie(name, value) {
    var secure = window.location.protocol === "https:" ? "; Secure" : "";
    document.cookie = name + "=" + encodeURIComponent(value) + "; Max-Age=31536000; Path=/; SameSite=Lax" + secure;
  }

  function anonymousId() {
    var aid = readCookie(AID_COOKIE);
    if (!aid) aid = uuid();
    writeCookie(AID_COOKIE, aid); // refreshes the one-year lifetime on every visit
    return aid;
  }

  function storedUserId() {
    try { return window.localStorage.getItem(UID_STORAGE); } catch (e) { return null; }
  }

  var state = { aid: anonymousId(), uid: storedUserId(), queue: [], timer: null };

  function context() {
    return {
      page: {
        url: window.location.href,
        path: window.location.pathname,
        title: document.title,
        referrer: document.referrer
      },
      user_agent: window.navigator.userAgent,
      locale: window.navigator.language,
      screen: { width: window.screen.width, height: window.screen.height },
      library: { name: "ecrm-tracker", version: "1" }
    };
  }

  function enqueue(item) {
    item.event_id = uuid();
    item.anonymous_id = state.aid;
    if (state.uid && !item.user_id) item.user_id = state.uid;
    item.occurred_at = new Date().toISOString();
    if (item.type !== "identify") item.context = context();
    state.queue.push(item);
    if (state.queue.length > MAX_QUEUE) state.queue.splice(0, state.queue.length - MAX_QUEUE);
    if (state.queue.length >= config.batchSize || item.type === "identify") flush(false);
    else if (!state.timer) state.timer = window.setTimeout(function () { flush(false); }, config.flushMs);
  }

  function flush(unloading) {
    if (state.timer) { window.clearTimeout(state.timer); state.timer = null; }
    if (!state.queue.length || !config.key) return;
    var batch = state.queue.splice(0, 500);
    var body = JSON.stringify({ key: config.key, batch: batch, sent_at: new Date().toISOString() });
    if (unloading && window.navigator.sendBeacon) {
      // sendBeacon survives the page going away; it cannot set headers, hence the key in the body.
      if (window.navigator.sendBeacon(config.endpoint, new Blob([body], { type: "text/plain" }))) return;
    }
    if (!window.fetch) return;
    window.fetch(config.endpoint, {
      method: "POST",
      body: body,
      headers: { "Content-Type": "text/plain" },
      mode: "cors",
      credentials: "omit",
      keepalive: body.length < 60000
    }).then(function (response) {
      // Server errors and throttling are retried with the next flush; 4xx answers would fail again.
      if (response.status >= 500 || response.status === 429) requeue(batch);
    }, function () {
      requeue(batch);
    });
  }

  function requeue(batch) {
    // Same event ids, so a batch that did arrive after all is stored once.
    state.queue = batch.concat(state.queue).slice(0, MAX_QUEUE);
    if (!state.timer) state.timer = window.setTimeout(function () { flush(false); }, config.flushMs * 3);
  }

  function props(obj) {
    var out = {};
    if (obj) for (var k in obj) if (Object.prototype.hasOwnProperty.call(obj, k)) out[k] = obj[k];
    return out;
  }

  var api = {
    __loaded: true,
    config: config,
    page: function (properties) {
      enqueue({ type: "page", name: document.title || "", properties: props(properties) });
    },
    track: function (name, properties) {
      enqueue({ type: "track", name: String(name || ""), properties: props(properties) });
    },
    productView: function (product) {
      enqueue({ type: "product_view", properties: props(product) });
    },
    addToCart: function (product, quantity) {
      var p = props(product);
      if (quantity !== undefined) p.quantity = quantity;
      enqueue({ type: "add_to_cart", properties: p });
    },
    checkout: function (order) {
      enqueue({ type: "checkout", properties: props(order) });
    },
    identify: function (userId, traits) {
      if (userId && typeof userId === "object") { traits = userId; userId = null; }
      var t = props(traits);
      var item = { type: "identify", traits: t };
      if (userId) {
        item.user_id = String(userId);
        state.uid = item.user_id;
        try { window.localStorage.setItem(UID_STORAGE, state.uid); } catch (e) { /* private mode */ }
      }
      if (t.email) { item.email = t.email; delete t.email; }
      if (t.phone) { item.phone = t.phone; delete t.phone; }
      enqueue(item);
    },
    reset: function () {
      flush(false);
      state.uid = null;
      try { window.localStorage.removeItem(UID_STORAGE); } catch (e) { /* private mode */ }
      state.aid = uuid();
      writeCookie(AID_COOKIE, state.aid);
    },
    flush: function () { flush(false); },
    anonymousId: function () { return state.aid; }
  };

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") flush(true);
  });
  window.addEventListener("pagehide", function () { flush(true); });

  window.ecrm = api;
  // Replay what the page asked for before this file arrived.
  if (existing && existing.length) {
    for (var i = 0; i < existing.length; i++) {
      var call = existing[i];
      if (call && api[call[0]]) api[call[0]].apply(api, call[1] || []);
    }
  }
})(window, document);
