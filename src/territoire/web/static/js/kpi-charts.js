/* Indicator trends on the KPI page, drawn with uPlot (vendored).
 *
 * Each `.kpi-chart` carries its data in `data-kpi-chart`: {t: [epoch seconds], v: [value
 * or null], target: number|null, label, target_label}. The figures are also in a table
 * next to the chart (the text alternative), so the chart itself is hidden from
 * assistive technologies. The element gets data-state="ready" once drawn (tests).
 */
(function () {
  "use strict";

  function draw(element) {
    var data;
    try {
      data = JSON.parse(element.dataset.kpiChart);
    } catch (error) {
      element.dataset.state = "error";
      return;
    }
    var series = [{}, { label: data.label, stroke: "#0b5cad", width: 2, spanGaps: true }];
    var columns = [data.t, data.v];
    if (data.target !== null && data.target !== undefined) {
      series.push({ label: data.target_label, stroke: "#a4262c", dash: [6, 4], width: 1.5 });
      columns.push(data.t.map(function () { return data.target; }));
    }
    var width = Math.max(240, Math.min(element.clientWidth || 640, 900));
    new window.uPlot(
      { width: width, height: 180, series: series, legend: { show: true }, cursor: { show: false } },
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
