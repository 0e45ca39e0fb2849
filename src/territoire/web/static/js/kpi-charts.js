/* Indicator trends on the KPI page, drawn with uPlot (vendored).
 *
 * Each `.kpi-chart` carries its data in `data-kpi-chart`: {t: [epoch seconds], v: [value
 * or null], target: number|null, label, target_label}. The figures are also in a table
 * next to the chart (the text alternative), so the chart itself is hidden from
 * assistive technologies. The element gets data-state="ready" once drawn (tests).
 */
(function () {
  "use strict";

  var lang = document.documentElement.lang || "fr";
  var dayFormat = new Intl.DateTimeFormat(lang, {
    day: "numeric", month: "short", timeZone: "Europe/Paris"
  });

  function day(seconds) {
    return seconds === null || seconds === undefined ? "–" : dayFormat.format(new Date(seconds * 1000));
  }

  function draw(element) {
    var data;
    try {
      data = JSON.parse(element.dataset.kpiChart);
    } catch (error) {
      element.dataset.state = "error";
      return;
    }
    // uPlot's own axis and legend are in English (month/day, "Time"): dates follow the page.
    var series = [{ label: "Date", value: function (u, v) { return day(v); } }, { label: data.label, stroke: "#0b5cad", width: 2, spanGaps: true }];
    var columns = [data.t, data.v];
    if (data.target !== null && data.target !== undefined) {
      series.push({ label: data.target_label, stroke: "#a4262c", dash: [6, 4], width: 1.5 });
      columns.push(data.t.map(function () { return data.target; }));
    }
    var width = Math.max(240, Math.min(element.clientWidth || 640, 900));
    new window.uPlot(
      {
        width: width,
        height: 180,
        series: series,
        legend: { show: true },
        cursor: { show: false },
        axes: [{ values: function (u, splits) { return splits.map(day); } }, {}]
      },
      columns,
      element
    );
    element.dataset.state = "ready";
  }

  function drawAll() {
    if (!window.uPlot) {
      return;
    }
    Array.prototype.forEach.call(document.querySelectorAll(".kpi-chart"), draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
