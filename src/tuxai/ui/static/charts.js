// tuxai's charts: the page's JSON block (#chart-data) drawn with uPlot, one chart per figure (its key in
// the data), one line per label (a GPU, a user). The page's tables say the same without a script.
"use strict";
(function () {
  var block = document.getElementById("chart-data");
  if (!block || !window.uPlot) return;
  var data = JSON.parse(block.textContent);
  var palette = ["#0b62c4", "#d1495b", "#2a9d8f", "#e9a23b", "#7b5ea7", "#3d7f3d", "#c05299", "#5c6f84"];
  var style = getComputedStyle(document.documentElement);
  var ink = style.getPropertyValue("--muted").trim() || "#5a6370";
  var grid = style.getPropertyValue("--line").trim() || "#d6dbe1";
  var scale = { memory_used_bytes: 1 / 1073741824 };

  // One x axis for every GPU: the union of their bucket starts, each GPU null where it has no point.
  function aligned(key) {
    var times = {};
    data.at.forEach(function (at) { at.forEach(function (t) { times[t] = true; }); });
    var xs = Object.keys(times).map(Number).sort(function (a, b) { return a - b; });
    var index = {};
    xs.forEach(function (t, i) { index[t] = i; });
    var columns = [xs];
    data.labels.forEach(function (label, g) {
      var ys = new Array(xs.length).fill(null);
      data.at[g].forEach(function (t, i) {
        var v = data[key][g][i];
        ys[index[t]] = v === null ? null : v * (scale[key] || 1);
      });
      columns.push(ys);
    });
    return columns;
  }

  var figures = document.querySelectorAll("figure[data-chart]");
  var plots = [];
  for (var f = 0; f < figures.length; f++) {
    var figure = figures[f];
    var series = [{}];
    data.labels.forEach(function (label, g) {
      series.push({ label: label, stroke: palette[g % palette.length], width: 1.5, spanGaps: false });
    });
    var axis = { stroke: ink, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
    var options = {
      width: Math.max(280, figure.clientWidth), height: 180, series: series,
      axes: [axis, Object.assign({}, axis, { label: figure.dataset.unit, size: 56 })],
      scales: { x: { time: true } }, legend: { live: true }, cursor: { drag: { x: true, y: false } }
    };
    plots.push(new window.uPlot(options, aligned(figure.dataset.chart), figure));
  }
  window.addEventListener("resize", function () {
    plots.forEach(function (plot) {
      plot.setSize({ width: Math.max(280, plot.root.parentNode.clientWidth), height: 180 });
    });
  });
  document.body.dataset.charts = String(plots.length);

  // A live chart (the Overview's last 15 min or hour) appends each GPU's sample as the events bring it,
  // and lets go of what falls out of its span; a running job's (span 0) keeps them all until it ends.
  if (!data.live) return;
  var keys = ["util_pct", "memory_used_bytes", "power_w"];
  var ended = false;
  document.addEventListener("tuxai:ended", function () { ended = true; });
  document.addEventListener("tuxai:sample", function (event) {
    if (ended) return;
    var samples = event.detail.gpus, latest = 0;
    data.gpus.forEach(function (gpu, g) {
      var sample = samples[gpu], at = data.at[g];
      if (!sample || (at.length && sample[0] <= at[at.length - 1])) return;
      at.push(sample[0]);
      keys.forEach(function (key, k) { data[key][g].push(sample[k + 1]); });
      latest = Math.max(latest, sample[0]);
      while (data.span && at.length && at[0] < sample[0] - data.span) {
        at.shift();
        keys.forEach(function (key) { data[key][g].shift(); });
      }
    });
    if (!latest) return;
    for (var p = 0; p < plots.length; p++) plots[p].setData(aligned(figures[p].dataset.chart));
    document.body.dataset.chartPoints = String(plots[0].data[0].length);
  });
})();
