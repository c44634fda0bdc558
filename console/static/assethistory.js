// The asset detail's chart: messages ingested per minute (bars, left
// axis) and the lag the polls saw (line, right axis) over the last 24
// hours, drawn with uPlot from /assets/<name>/history.json. The page's
// CSP allows no inline script, so the figures come from that endpoint; the
// same figures are in the table beside the chart for keyboard and
// screen-reader users. htmx replaces the status part after poll now, and
// the new part's chart is drawn as it loads.
(function () {
  "use strict";
  var DAY = 24 * 60 * 60;
  // WCAG AA: both stroke colours have 6:1 or more on white; the series
  // also differ in shape (bars, line) and are named in the legend.
  var MESSAGES = "#0b57d0", LAG = "#8a3b00";

  function draw(fig) {
    if (!fig || fig.dataset.drawn || typeof uPlot === "undefined") { return; }
    fig.dataset.drawn = "loading";
    var box = fig.querySelector(".chart");
    fetch(fig.dataset.historyUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (!r.ok) { throw new Error("the history could not be read (HTTP " + r.status + ")"); }
        return r.json();
      })
      .then(function (h) { plot(fig, box, h); })
      .catch(function (err) {
        fig.dataset.drawn = "failed";
        box.textContent = "The chart could not be drawn: " + err.message + ". The figures are in the table below.";
        box.classList.add("chart-note");
      });
  }

  function plot(fig, box, h) {
    var xs = [], messages = [], lag = [];
    (h.minutes || []).forEach(function (m) {
      xs.push(Date.parse(m.minute) / 1000);
      messages.push(m.messages);
      lag.push(m.lag === null || m.lag === undefined ? null : m.lag);
    });
    fig.dataset.points = String(xs.length);
    if (xs.length === 0) {
      fig.dataset.drawn = "empty";
      box.textContent = "No poll in the last 24 hours.";
      box.classList.add("chart-note");
      return;
    }
    var now = Math.floor(Date.now() / 1000);
    var opts = {
      width: width(fig), height: 260,
      // Both axes and the time in UTC, as the tables show it.
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      scales: {
        x: { time: true, range: function () { return [now - DAY, now + 60]; } },
        msgs: { range: function (u, min, max) { return [0, Math.max(1, max)]; } },
        lag: { range: function (u, min, max) { return [0, Math.max(1, max === null ? 1 : max)]; } }
      },
      axes: [
        { stroke: "#1b1f24", grid: { stroke: "#e3e7ec" },
          values: function (u, splits) { return splits.map(function (s) { return utc(s).slice(11, 16); }); } },
        { scale: "msgs", label: "messages / minute", stroke: MESSAGES, grid: { stroke: "#e3e7ec" } },
        { scale: "lag", label: "lag", side: 1, stroke: LAG, grid: { show: false } }
      ],
      series: [
        { label: "minute (UTC)", value: function (u, v) { return v === null ? "--" : utc(v).slice(0, 16).replace("T", " "); } },
        { label: "messages", scale: "msgs", stroke: MESSAGES, fill: "rgba(11, 87, 208, 0.35)", width: 1,
          paths: uPlot.paths.bars({ size: [0.6, 8] }), points: { show: false } },
        { label: "lag", scale: "lag", stroke: LAG, width: 2, spanGaps: true, points: { show: true, size: 5, fill: LAG } }
      ]
    };
    box.textContent = "";
    var chart = new uPlot(opts, [xs, messages, lag], box);
    fig.chart = chart;
    fig.dataset.drawn = "true";
    window.addEventListener("resize", function () {
      if (document.body.contains(fig)) { chart.setSize({ width: width(fig), height: 260 }); }
    });
  }

  function utc(seconds) { return new Date(seconds * 1000).toISOString(); }

  function width(fig) { return Math.max(280, Math.min(fig.clientWidth || 800, 1200)); }

  function drawIn(root) {
    if (!root || !root.querySelectorAll) { return; }
    if (root.matches && root.matches("figure[data-history-url]")) { draw(root); }
    root.querySelectorAll("figure[data-history-url]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () { drawIn(document); });
  // htmx fires htmx:load on every piece of content it puts in the page.
  document.addEventListener("htmx:load", function (e) { drawIn(e.target); });
})();
