/* Charts of an asset's series (uPlot), on the asset page and in the map's side panel.
 *
 * A `.entity-charts` section names its data with data-series-url; the period radio
 * buttons (day, week, month) re-read it. Each chart has a text alternative: a one-line
 * summary and a table of the buckets (in a <details>). Sections added later by htmx
 * (the side panel) are set up when they are swapped in.
 *
 * For tests: the section gets data-state="loading|ready|error", data-period and
 * data-charts="<number of charts drawn>".
 */
(function () {
  "use strict";

  var lang = document.documentElement.lang || "fr";
  var numberFormat = new Intl.NumberFormat(lang, { maximumFractionDigits: 2 });
  var dayFormat = new Intl.DateTimeFormat(lang, { dateStyle: "short", timeZone: "Europe/Paris" });
  var timeFormat = new Intl.DateTimeFormat(lang, {
    dateStyle: "short", timeStyle: "short", timeZone: "Europe/Paris"
  });

  var hourFormat = new Intl.DateTimeFormat(lang, {
    hour: "2-digit", minute: "2-digit", timeZone: "Europe/Paris"
  });
  var shortDayFormat = new Intl.DateTimeFormat(lang, {
    day: "numeric", month: "short", timeZone: "Europe/Paris"
  });

  function axisDates(u, splits) {
    var span = splits.length > 1 ? splits[splits.length - 1] - splits[0] : 0;
    var format = span <= 2 * 86400 ? hourFormat : shortDayFormat;
    return splits.map(function (seconds) { return format.format(new Date(seconds * 1000)); });
  }

  function attr(el, name) {
    return el.getAttribute("data-" + name) || "";
  }

  function node(tag, className, text) {
    var el = document.createElement(tag);
    if (className) {
      el.className = className;
    }
    if (text !== undefined) {
      el.textContent = text;
    }
    return el;
  }

  function fill(template, values) {
    return Object.keys(values).reduce(function (text, key) {
      return text.split("{" + key + "}").join(values[key]);
    }, template);
  }

  function summary(section, series, format) {
    var n = series.t.length;
    var mean = series.avg.reduce(function (a, b) { return a + b; }, 0) / n;
    return fill(attr(section, "msg-summary"), {
      n: numberFormat.format(n),
      from: format.format(new Date(series.t[0] * 1000)),
      to: format.format(new Date(series.t[n - 1] * 1000)),
      min: numberFormat.format(Math.min.apply(null, series.min)),
      avg: numberFormat.format(mean),
      max: numberFormat.format(Math.max.apply(null, series.max))
    });
  }

  function table(section, series, format) {
    var details = node("details", "chart-table");
    details.appendChild(node("summary", "", attr(section, "msg-table")));
    var grid = node("table", "data-table");
    var head = node("tr");
    ["msg-start", "msg-min", "msg-mean", "msg-max"].forEach(function (key) {
      var cell = node("th", "", attr(section, key));
      cell.scope = "col";
      head.appendChild(cell);
    });
    grid.appendChild(node("thead")).appendChild(head);
    var body = grid.appendChild(node("tbody"));
    series.t.forEach(function (t, i) {
      var row = node("tr");
      var when = node("th", "", format.format(new Date(t * 1000)));
      when.scope = "row";
      row.appendChild(when);
      [series.min[i], series.avg[i], series.max[i]].forEach(function (v) {
        row.appendChild(node("td", "", numberFormat.format(v)));
      });
      body.appendChild(row);
    });
    details.appendChild(grid);
    return details;
  }

  function plot(target, series, width) {
    var label = series.attribute + (series.unit ? " (" + series.unit + ")" : "");
    return new uPlot({
      width: width,
      height: 160,
      legend: { show: false },
      scales: { x: { time: true } },
      series: [
        {},
        { label: label, stroke: "#0063b1", width: 2 },
        { label: "min", stroke: "#8fb3d9", width: 1, dash: [4, 4] },
        { label: "max", stroke: "#8fb3d9", width: 1, dash: [4, 4] }
      ],
      // Axis dates in the page's language and Paris time (uPlot's default is month/day).
      axes: [{ values: axisDates }, { size: 56 }]
    }, [series.t, series.avg, series.min, series.max], target);
  }

  function draw(section, data) {
    var list = section.querySelector(".chart-list");
    var status = section.querySelector(".chart-status");
    list.textContent = "";
    var format = data.bucket === "P1D" ? dayFormat : timeFormat;
    var width = Math.max(240, Math.min(640, list.clientWidth || 320));
    var drawn = 0;
    data.series.forEach(function (series) {
      var figure = node("figure", "chart");
      var caption = node("figcaption", "", series.attribute + (series.unit ? " (" + series.unit + ")" : ""));
      figure.appendChild(caption);
      list.appendChild(figure);
      if (!series.t.length) {
        figure.appendChild(node("p", "muted", attr(section, "msg-empty")));
        return;
      }
      var canvasBox = node("div", "chart-canvas");
      canvasBox.setAttribute("aria-hidden", "true");
      figure.appendChild(canvasBox);
      plot(canvasBox, series, width);
      figure.appendChild(node("p", "chart-summary", summary(section, series, format)));
      figure.appendChild(table(section, series, format));
      drawn += 1;
    });
    status.textContent = "";
    section.setAttribute("data-period", data.period);
    section.setAttribute("data-charts", String(drawn));
    section.setAttribute("data-state", "ready");
  }

  function load(section) {
    var chosen = section.querySelector(".period-choice input:checked");
    var period = chosen ? chosen.value : "day";
    var status = section.querySelector(".chart-status");
    section.setAttribute("data-state", "loading");
    status.textContent = attr(section, "msg-loading");
    fetch(attr(section, "series-url") + "?period=" + encodeURIComponent(period), {
      headers: { Accept: "application/json" }, credentials: "same-origin"
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("HTTP " + response.status);
      }
      return response.json();
    }).then(function (data) {
      draw(section, data);
    }).catch(function () {
      section.setAttribute("data-state", "error");
      status.textContent = attr(section, "msg-error");
    });
  }

  function setUp(root) {
    root.querySelectorAll(".entity-charts").forEach(function (section) {
      if (section.hasAttribute("data-ready-to-load")) {
        return;
      }
      section.setAttribute("data-ready-to-load", "");
      section.querySelectorAll(".period-choice input").forEach(function (radio) {
        radio.addEventListener("change", function () { load(section); });
      });
      load(section);
    });
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    setUp(event.target);
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { setUp(document); });
  } else {
    setUp(document);
  }
})();
