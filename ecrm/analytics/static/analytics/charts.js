/* Draw every [data-chart] element from the JSON option block it names (built on the server). */
(function () {
  "use strict";
  var charts = [];
  function draw(root) {
    if (!window.echarts) { return; }
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.drawn) { return; }
      var src = document.getElementById(el.dataset.chart);
      if (!src) { return; }
      var chart = window.echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(JSON.parse(src.textContent));
      el.dataset.drawn = "1";
      charts.push(chart);
    });
  }
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSwap", function (e) { draw(e.target); });
})();
