// Evaluation charts (plotly, vendored). Data come from json_script blocks; clicking a point
// opens the samples behind it. Published figures are drawn as labelled reference markers.
(function () {
  "use strict";
  function data(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }
  // The legend sits right of the plot: below it, it collided with long benchmark names.
  var layoutBase = {margin: {t: 30, r: 10, b: 60, l: 50},
                    legend: {orientation: "v", x: 1.02, xanchor: "left", y: 1, yanchor: "top"},
                    xaxis: {automargin: true}, yaxis: {automargin: true}};
  var config = {displaylogo: false, responsive: true};

  function openOnClick(el) {
    el.on("plotly_click", function (ev) {
      var p = ev.points && ev.points[0];
      var url = p && p.customdata;
      if (url) { window.location.href = url; }
    });
  }

  // An empty chart says so instead of drawing plotly's default -1…6 axes.
  function nothingToDraw(el) {
    var p = document.createElement("p");
    p.className = "empty chart-empty";
    p.textContent = "Nothing to draw yet.";
    el.replaceWith(p);
  }
  function anyValue(arrays) {
    return arrays.some(function (a) { return a.some(function (v) { return v !== null && v !== undefined; }); });
  }

  var cmp = data("eval-chart-data");
  var cmpEl = document.getElementById("eval-chart");
  if (cmp && cmpEl && !(cmp.benchmarks.length && anyValue(cmp.series.map(function (s) { return s.values; })
        .concat(cmp.published.map(function (p) { return p.values; }))))) {
    nothingToDraw(cmpEl);
  } else if (cmp && cmpEl) {
    var traces = cmp.series.map(function (s) {
      return {type: "bar", name: s.name, x: cmp.benchmarks, y: s.values, customdata: s.urls,
              error_y: {type: "data", array: s.errors.map(function (e) { return e || 0; }), visible: true},
              hovertemplate: "%{x}: %{y:.1f}%<extra>" + s.name + "</extra>"};
    });
    var symbols = ["line-ew-open", "diamond-open", "star-open", "x-thin-open", "circle-open", "square-open", "cross-thin-open", "triangle-up-open"];
    cmp.published.forEach(function (p, i) {
      traces.push({type: "scatter", mode: "markers", name: p.name, x: cmp.benchmarks, y: p.values,
                   marker: {symbol: symbols[i % symbols.length], size: 14, line: {width: 2}},
                   hovertemplate: "%{x}: %{y:.1f}% (published figure)<extra>" + p.name + "</extra>"});
    });
    Plotly.newPlot(cmpEl, traces, Object.assign({}, layoutBase, {
      barmode: "group", yaxis: {title: "accuracy (%)", range: [0, 100], automargin: true},
      xaxis: {automargin: true, tickangle: -25},
      title: {text: "skyboard runs (bars) vs published figures (markers)", font: {size: 13}}
    }), config);
    openOnClick(cmpEl);
  }

  var lengths = data("eval-lengths");
  var lenEl = document.getElementById("eval-lengths-chart");
  if (lengths && lenEl && !anyValue(Object.keys(lengths).map(function (k) { return lengths[k].counts; }))) {
    nothingToDraw(lenEl);
  } else if (lengths && lenEl) {
    var lt = Object.keys(lengths).map(function (name) {
      var h = lengths[name];
      var mids = h.counts.map(function (_, i) { return (h.edges[i] + h.edges[i + 1]) / 2; });
      return {type: "bar", name: name, x: mids, y: h.counts, opacity: 0.7,
              customdata: h.counts.map(function () { return h.url; }),
              hovertemplate: "%{x} tokens: %{y} samples<extra>" + name + "</extra>"};
    });
    Plotly.newPlot(lenEl, lt, Object.assign({}, layoutBase, {
      barmode: "overlay", xaxis: {title: "completion tokens", automargin: true},
      yaxis: {title: "samples", automargin: true, rangemode: "tozero"}
    }), config);
    openOnClick(lenEl);
  }

  var steps = data("eval-steps");
  var stepEl = document.getElementById("eval-steps-chart");
  if (steps && stepEl && !Object.keys(steps).length) {
    nothingToDraw(stepEl);
  } else if (steps && stepEl) {
    var st = Object.keys(steps).map(function (name) {
      var pts = steps[name];
      return {type: "scatter", mode: "lines+markers", name: name,
              x: pts.map(function (p) { return p.step; }), y: pts.map(function (p) { return p.value; }),
              error_y: {type: "data", array: pts.map(function (p) { return p.se || 0; }), visible: true},
              customdata: pts.map(function (p) { return p.url; })};
    });
    Plotly.newPlot(stepEl, st, Object.assign({}, layoutBase, {
      xaxis: {title: "training step", automargin: true},
      yaxis: {title: "accuracy (%)", range: [0, 100], automargin: true}
    }), config);
    openOnClick(stepEl);
  }

  // New evaluation form: show the fields of the chosen source only. A checkpoint evaluation
  // evaluates the checkpoint's folder, so the model path (pre-filled with the demo model) hides.
  var source = document.querySelector(".eval-form select[name=source]");
  if (source) {
    var shown = {model_path: ["model", "endpoint"], checkpoint: ["checkpoint"], base_url: ["endpoint"],
                 backend: ["model", "checkpoint"]};
    var syncSource = function () {
      Object.keys(shown).forEach(function (name) {
        var input = source.form.querySelector("[name=" + name + "]");
        var row = input && input.closest("p");
        if (row) { row.hidden = shown[name].indexOf(source.value) < 0; }
      });
    };
    source.addEventListener("change", syncSource);
    syncSource();
  }

  // Multi-select of runs → the comma list the compare URL takes.
  document.querySelectorAll("select[data-join-into]").forEach(function (sel) {
    var target = sel.form.querySelector("input[name=" + sel.dataset.joinInto + "]");
    sel.removeAttribute("name");
    sel.addEventListener("change", function () {
      target.value = Array.prototype.filter.call(sel.options, function (o) { return o.selected; })
        .map(function (o) { return o.value; }).join(",");
    });
  });
})();
