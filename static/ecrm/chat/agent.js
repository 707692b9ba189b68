/*!
 * eCRM chat presence for console pages: while this socket is open (and pinged every 20 s) the signed-in
 * agent counts as online for the chat widget of their teams' inboxes. Include it on the agent's inbox
 * pages:  <script src="{% static 'ecrm/chat/agent.js' %}" defer></script>
 * It connects only when the page has a console top bar (a signed-in user) and never logs an error.
 */
(function (window, document) {
  "use strict";
  if (window.__ecrmChatPresence || !("WebSocket" in window)) return;
  window.__ecrmChatPresence = true;
  var PING_MS = 20000;
  var retry = 2000;

  function connect() {
    if (!document.querySelector(".topbar")) return;
    var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/chat/agents/");
    var timer = null;
    ws.onopen = function () {
      retry = 2000;
      document.documentElement.setAttribute("data-chat-presence", "online");
      timer = setInterval(function () { ws.send('{"type":"ping"}'); }, PING_MS);
    };
    ws.onclose = function (ev) {
      clearInterval(timer);
      document.documentElement.setAttribute("data-chat-presence", "offline");
      if (ev.code === 4401) return; // not an agent, or signed out
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 60000);
    };
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", connect);
  else connect();
})(window, document);
