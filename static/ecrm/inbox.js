// Agent inbox: live updates over /ws/inbox/ (list rows and the conversation's #messages refresh
// without reload), the reply/note composer, canned replies, knowledge-base inserts, typing events
// and keyboard shortcuts (j/k next/prev, r reply, n note, e resolve, / search, ? help).
(function () {
  "use strict";

  function csrf() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  function fetchText(url) {
    return fetch(url, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); });
  }

  function openSocket(query, onEvent) {
    if (!("WebSocket" in window)) return null;
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    var delay = 1000;
    var state = { ws: null };
    function connect() {
      var ws = new WebSocket(proto + location.host + "/ws/inbox/" + (query ? "?" + query : ""));
      state.ws = ws;
      ws.onopen = function () { delay = 1000; document.body.dataset.inboxLive = "1"; };
      ws.onmessage = function (msg) {
        var data;
        try { data = JSON.parse(msg.data); } catch (e) { return; }
        if (data.type === "hello") { onEvent({ type: "resync" }); return; }
        onEvent(data);
      };
      ws.onclose = function (ev) {
        document.body.dataset.inboxLive = "0";
        if (ev.code === 4401 || ev.code === 4403) return;
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 30000);
      };
    }
    connect();
    return state;
  }

  // --- the list ----------------------------------------------------------------------------------
  function initList(list) {
    var rowBase = list.dataset.rowUrl.replace(/0\/$/, "");
    function query() { return list.dataset.query || ""; }
    function refreshRow(id, isNew) {
      var existing = document.getElementById("conv-" + id);
      if (!existing && (!isNew || list.dataset.firstPage !== "1")) return;
      fetchText(rowBase + id + "/?" + query()).then(function (html) {
        var tbody = document.getElementById("inbox-rows");
        var holder = document.createElement("tbody");
        holder.innerHTML = html.trim();
        var row = holder.querySelector("tr");
        var current = document.getElementById("conv-" + id);
        if (!row) { if (current) current.remove(); return; }
        if (current) current.remove();
        var empty = tbody.querySelector(".inbox-empty");
        if (empty) empty.remove();
        tbody.insertBefore(row, tbody.firstChild);  // newest activity first
        row.classList.add("flash-row");
      }).catch(function () { /* not visible any more */ var r = document.getElementById("conv-" + id); if (r) r.remove(); });
    }
    openSocket("", function (ev) {
      if (!ev.conversation) return;
      refreshRow(ev.conversation, ev.type === "message.created" || ev.type === "conversation.assigned" || ev.type === "conversation.updated");
    });
    document.body.addEventListener("htmx:afterSwap", function (e) {
      if (e.detail.target === list) {
        var params = new URLSearchParams(location.search); params.delete("after");
        list.dataset.query = params.toString();
        list.dataset.firstPage = "1";
        selected = -1;
      }
    });
    var selected = -1;
    function rows() { return Array.prototype.slice.call(document.querySelectorAll("#inbox-rows tr.inbox-row")); }
    function select(i) {
      var all = rows(); if (!all.length) return;
      selected = Math.max(0, Math.min(all.length - 1, i));
      all.forEach(function (r, j) { r.classList.toggle("selected", j === selected); });
      all[selected].scrollIntoView({ block: "nearest" });
    }
    return {
      j: function () { select(selected + 1); },
      k: function () { select(selected - 1); },
      enter: function () { var r = rows()[selected]; if (r) location.href = r.dataset.href; },
      search: function () { var s = document.getElementById("inbox-search"); if (s) { s.focus(); s.select(); } }
    };
  }

  // --- the conversation page ---------------------------------------------------------------------
  function initConversation(root) {
    var id = root.dataset.id;
    var box = document.getElementById("messages");
    var loading = null, again = false;
    function lastId() {
      var items = box.querySelectorAll("article.message");
      return items.length ? items[items.length - 1].dataset.id : "0";
    }
    function refresh(afterId) {
      if (loading) { again = true; return loading; }
      var after = afterId !== undefined ? afterId : lastId();
      loading = fetchText(root.dataset.messagesUrl + "?after=" + after).then(function (html) {
        var holder = document.createElement("div");
        holder.innerHTML = html;
        holder.querySelectorAll("article.message").forEach(function (art) {
          var current = box.querySelector('article.message[data-id="' + art.dataset.id + '"]');
          if (current) current.replaceWith(art); else box.appendChild(art);
          box.dataset.lastId = lastId();
        });
        if (holder.querySelector("article.message")) box.lastElementChild.scrollIntoView({ block: "nearest" });
      }).catch(function () {}).then(function () {
        loading = null;
        if (again) { again = false; refresh(); }
      });
      return loading;
    }
    var typingTimer = null;
    var indicator = document.getElementById("typing-indicator");
    var socket = openSocket("conversation=" + encodeURIComponent(id), function (ev) {
      if (ev.type === "resync") { refresh(); return; }
      if (String(ev.conversation) !== String(id)) return;
      if (ev.type === "message.created" || ev.type === "note.created") refresh();
      else if (ev.type === "message.status") refresh(Math.max(0, Number(ev.message) - 1));
      else if (ev.type === "typing" && ev.who !== "agent" && indicator) {
        indicator.hidden = false;
        clearTimeout(typingTimer);
        typingTimer = setTimeout(function () { indicator.hidden = true; }, 4000);
      } else if (ev.type === "conversation.updated" || ev.type === "conversation.assigned") {
        var st = document.querySelector("#status-form select[name=status]");
        if (st && ev.status) st.value = ev.status;
      }
    });

    // Composer: reply and note tabs, sent with fetch (the page still works without JS).
    var errorBox = document.getElementById("composer-error");
    function mode(which) {
      document.querySelectorAll(".composer-tabs [data-mode]").forEach(function (b) { b.classList.toggle("active", b.dataset.mode === which); });
      document.querySelectorAll(".composer form[data-mode]").forEach(function (f) { f.hidden = f.dataset.mode !== which; });
      var form = document.querySelector('.composer form[data-mode="' + which + '"]');
      if (form) form.querySelector("textarea").focus();
    }
    document.querySelectorAll(".composer-tabs [data-mode]").forEach(function (b) {
      b.addEventListener("click", function () { mode(b.dataset.mode); });
    });
    document.querySelectorAll(".composer form").forEach(function (form) {
      var textarea = form.querySelector("textarea");
      textarea.addEventListener("keydown", function (e) {
        if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); }
      });
      if (form.id === "reply-form") {
        var lastSent = 0;
        textarea.addEventListener("input", function () {
          var now = Date.now();
          if (socket && socket.ws && socket.ws.readyState === 1 && now - lastSent > 1500) {
            lastSent = now;
            socket.ws.send(JSON.stringify({ type: "typing" }));
          }
        });
      }
      form.addEventListener("submit", function (e) {
        e.preventDefault();
        var button = form.querySelector("button[type=submit]");
        button.disabled = true;
        fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin",
                             headers: { "X-Requested-With": "fetch", "X-CSRFToken": csrf() } })
          .then(function (r) { return r.json().then(function (data) { return { ok: r.ok, data: data }; }); })
          .then(function (res) {
            if (!res.ok) { errorBox.textContent = res.data.message || "Error"; errorBox.hidden = false; return; }
            errorBox.hidden = true;
            textarea.value = "";
            refresh();
          })
          .catch(function () { errorBox.textContent = "Network error — not sent."; errorBox.hidden = false; })
          .then(function () { button.disabled = false; });
      });
    });

    // Canned replies: the server fills the variables in; the text goes into the reply box.
    var canned = document.getElementById("canned-select");
    if (canned) canned.addEventListener("change", function () {
      if (!canned.value) return;
      var url = canned.dataset.url.replace(/\/0\/$/, "/" + canned.value + "/");
      fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (data) {
        if (data.text === undefined) { errorBox.textContent = data.message; errorBox.hidden = false; return; }
        errorBox.hidden = true;
        insert(document.querySelector("#reply-form textarea"), data.text);
        canned.value = "";
      });
    });
    function insert(textarea, text) {
      var start = textarea.selectionStart || textarea.value.length;
      textarea.value = textarea.value.slice(0, start) + text + textarea.value.slice(textarea.selectionEnd || start);
      mode("reply");
    }
    document.addEventListener("click", function (e) {
      var t = e.target;
      if (t.matches("[data-insert-article]")) {
        var text = t.dataset.url ? t.dataset.title + "\n" + t.dataset.url : t.dataset.text;
        insert(document.querySelector("#reply-form textarea"), text);
      } else if (t.matches("[data-show-images]")) {
        var frame = t.closest(".message-html").querySelector("iframe");
        frame.srcdoc = frame.dataset.srcdocImages;
        t.closest(".remote-images").remove();
      }
    });
    return {
      j: function () { if (root.dataset.nextUrl) location.href = root.dataset.nextUrl; },
      k: function () { if (root.dataset.prevUrl) location.href = root.dataset.prevUrl; },
      r: function () { mode("reply"); },
      n: function () { mode("note"); },
      e: function () { var b = document.getElementById("resolve-button"); if (b) b.click(); },
      search: function () { location.href = root.dataset.inboxUrl + "#search"; }
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    var list = document.getElementById("inbox-list");
    var conv = document.getElementById("conversation");
    var keys = list ? initList(list) : conv ? initConversation(conv) : null;
    if (!keys) return;
    if (list && location.hash === "#search") keys.search();
    var help = document.getElementById("shortcut-help");
    document.querySelectorAll("[data-shortcut-help]").forEach(function (b) {
      b.addEventListener("click", function () { help.showModal(); });
    });
    document.addEventListener("keydown", function (e) {
      var t = e.target;
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      if (t.closest && t.closest("input, textarea, select, [contenteditable]")) {
        if (e.key === "Escape") t.blur();
        return;
      }
      var fn = { j: keys.j, k: keys.k, r: keys.r, n: keys.n, e: keys.e, "/": keys.search, Enter: keys.enter }[e.key];
      if (e.key === "?") { e.preventDefault(); if (help.open) help.close(); else help.showModal(); return; }
      if (fn) { e.preventDefault(); fn(); }
    });
  });
})();
