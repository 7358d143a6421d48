/* Charts drawn from the tables beside them (uPlot, vendored: static/js/uPlot-1.6.32.iife.min.js).
 *
 * A <figure class="chart" data-zone="Europe/Berlin"> holds a <div class="chart-plot"> and a <table
 * class="chart-data">: its body rows are the points (data-x: the bucket's start, epoch seconds), its header's
 * cells with data-series are the series (their text is the legend). The table stays on the page: it is the
 * figures themselves and what a screen reader reads; the drawing is hidden from assistive technology. Each series
 * has its own dash pattern and point style as well as its colour, so the chart reads without colour.
 * Drawn again when htmx swaps a panel in, and when the window's width changes.
 */
(function () {
  "use strict";

  var STYLES = [
    {stroke: "#1f6feb", dash: [], fill: "#1f6feb"},          // solid line, filled points
    {stroke: "#b35900", dash: [8, 4], fill: "#ffffff"},      // dashed line, hollow points
    {stroke: "#2f7d32", dash: [2, 3], fill: "#2f7d32"},      // dotted line, filled points
    {stroke: "#8e24aa", dash: [12, 3, 2, 3], fill: "#ffffff"}, // dash-dot line, hollow points
    {stroke: "#cf222e", dash: [16, 4], fill: "#cf222e"}      // long dashes, filled points
  ];

  function number(text) {
    var value = parseFloat(String(text).replace(/[^0-9.\-]/g, ""));
    return isNaN(value) ? null : value;
  }

  function dataOf(table) {
    var heads = Array.prototype.slice.call(table.querySelectorAll("thead th[data-series]"));
    var rows = Array.prototype.slice.call(table.querySelectorAll("tbody tr[data-x]"));
    var xs = rows.map(function (row) { return Number(row.getAttribute("data-x")); });
    var columns = heads.map(function (head) {
      var index = Array.prototype.indexOf.call(head.parentNode.children, head);
      return rows.map(function (row) { return number(row.children[index] ? row.children[index].textContent : ""); });
    });
    return {names: heads.map(function (h) { return h.textContent.trim(); }), data: [xs].concat(columns),
            percent: table.getAttribute("data-unit") === "percent"};
  }

  function draw(figure) {
    var plot = figure.querySelector(".chart-plot");
    var table = figure.querySelector("table.chart-data");
    if (!plot || !table || typeof uPlot === "undefined") return;
    var found = dataOf(table);
    if (found.data[0].length === 0) return;
    if (figure._chart) { figure._chart.destroy(); figure._chart = null; }
    var zone = figure.getAttribute("data-zone") || "UTC";
    var width = Math.max(280, plot.clientWidth || figure.clientWidth || 600);
    var series = [{}].concat(found.names.map(function (name, i) {
      var style = STYLES[i % STYLES.length];
      return {label: name, stroke: style.stroke, width: 2, dash: style.dash,
              points: {show: true, size: 7, stroke: style.stroke, fill: style.fill, width: 2},
              value: function (u, v) { return v == null ? "–" : (found.percent ? v + " %" : v.toLocaleString()); }};
    }));
    figure._chart = new uPlot({
      width: width, height: 240, series: series,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), zone); },
      axes: [{}, {values: function (u, ticks) { return ticks.map(function (t) { return found.percent ? t + " %" : t; }); }}],
      scales: {y: found.percent ? {range: [0, 100]} : {range: function (u, min, max) { return [0, Math.max(1, max)]; }}},
      cursor: {drag: {x: false, y: false}}
    }, found.data, plot);
    figure.setAttribute("data-drawn", String(found.data[0].length));
  }

  function drawAll(root) {
    Array.prototype.forEach.call((root || document).querySelectorAll("figure.chart"), draw);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSettle", function (event) { drawAll(event.target); });
  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () { drawAll(document); }, 200);
  });
}());
