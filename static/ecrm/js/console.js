// Console behaviour shared by every page: live updates over WebSocket, dispatched as DOM events
// ("ecrm:live") that pages listen for; htmx handles partial swaps.
(function () {
  "use strict";
  function connect(delay) {
    if (!("WebSocket" in window) || !document.querySelector(".topbar")) return;
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(proto + location.host + "/ws/live/");
    ws.onmessage = function (msg) {
      try { document.dispatchEvent(new CustomEvent("ecrm:live", { detail: JSON.parse(msg.data) })); } catch (e) { /* ignore */ }
    };
    ws.onclose = function (ev) {
      if (ev.code === 4401) return;  // signed out
      setTimeout(function () { connect(Math.min((delay || 1000) * 2, 30000)); }, delay || 1000);
    };
  }
  document.addEventListener("DOMContentLoaded", function () { connect(1000); });
})();
