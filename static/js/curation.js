// Curation run page: per-stage progress, the acceptance funnel and the failure reasons, kept
// live by polling a small JSON endpoint (slower while the tab is hidden, stopped when final).
(function () {
  "use strict";
  var root = document.getElementById("curation-run");
  var dataEl = document.getElementById("curation-data");
  if (!root || !dataEl) return;
  var FINAL = { succeeded: 1, failed: 1, cancelled: 1 };
  var STAGES = ["generate", "verify", "reformat", "reverify", "export"];
  var data = JSON.parse(dataEl.textContent);
  var bySelect = document.getElementById("funnel-by");

  function stageBoxes(d) {
    // The cards come from the same numbers as the funnel (the server's d.stages): done of
    // expected rows, how many passed; a stage the run does not run says "skipped".
    var box = document.getElementById("stage-boxes");
    var current = d.status.progress && d.status.progress.stage;
    box.replaceChildren();
    (d.stages || []).forEach(function (st) {
      var s = st.stage;
      var div = document.createElement("div");
      div.className = "stage" + (s === current ? " current" : "") + (st.skipped ? " skipped" : "");
      div.dataset.stage = s;
      var b = document.createElement("b"); b.textContent = st.label; div.appendChild(b);
      var t = document.createElement("span");
      if (st.skipped) {
        t.textContent = "skipped (reformat off)";
      } else {
        var p = document.createElement("progress"); p.max = Math.max(st.total, 1); p.value = Math.min(st.done, p.max);
        div.appendChild(p);
        var unverified = (d.unverified || {})[s];
        t.textContent = (st.note ? st.note + " " : "") + st.done + " / " + st.total +
          (s !== "export" ? " · passed " + st.passed : "") +
          (unverified ? " (" + unverified + " unverified)" : "");
      }
      div.appendChild(t);
      box.appendChild(div);
    });
  }

  function shownStages(d) {
    var skipped = d.skipped || [];
    return STAGES.filter(function (s) { return skipped.indexOf(s) < 0; });
  }

  function funnel(d) {
    var by = bySelect ? bySelect.value : "source";
    var groups = d.funnel[by] || {};
    var names = Object.keys(groups);
    var stages = shownStages(d);
    var x = stages.map(function (s) { return d.labels[s]; });
    var traces = names.map(function (g) {
      var row = groups[g];
      var ys = stages.map(function (s) { return row[s] || 0; });
      return { type: "bar", name: g, x: x, y: ys };
    });
    Plotly.react("funnel-chart", traces, {
      barmode: "stack", margin: { t: 10, l: 50, r: 10, b: 40 }, yaxis: { title: "samples" },
      legend: { orientation: "h" }
    }, { displaylogo: false, responsive: true });
  }

  function reasons(d) {
    var traces = [];
    var all = {};
    Object.keys(d.reasons).forEach(function (stage) { Object.keys(d.reasons[stage]).forEach(function (r) { all[r] = 1; }); });
    Object.keys(all).sort().forEach(function (reason) {
      traces.push({
        type: "bar", orientation: "h", name: reason,
        y: shownStages(d).slice(0, -1).map(function (s) { return d.labels[s]; }),
        x: shownStages(d).slice(0, -1).map(function (s) { return (d.reasons[s] || {})[reason] || 0; })
      });
    });
    Plotly.react("reasons-chart", traces, {
      barmode: "stack", margin: { t: 10, l: 90, r: 10, b: 40 }, xaxis: { title: "samples that did not pass" },
      legend: { orientation: "h" }
    }, { displaylogo: false, responsive: true });
  }

  function draw(d) {
    var st = root.querySelector('[data-field="state"]');
    st.textContent = d.status.state; st.className = "state state-" + d.status.state;
    stageBoxes(d);
    var kept = document.querySelector('[data-field="accepted-unverified"]');
    if (kept) kept.textContent = d.accepted_unverified || 0;
    if (window.Plotly) { funnel(d); reasons(d); }
  }

  if (bySelect) bySelect.addEventListener("change", function () { draw(data); });
  draw(data);

  var delay = 2000, MAX = 60000, wasFinal = !!FINAL[data.status.state];
  function tick() {
    fetch(root.dataset.status, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (d) {
        data = d; draw(d);
        delay = document.hidden ? Math.min(delay * 2, MAX) : 2000;
        if (FINAL[d.status.state]) { if (!wasFinal) location.reload(); return; }
        setTimeout(tick, delay);
      })
      .catch(function () { delay = Math.min(delay * 2, MAX); setTimeout(tick, delay); });
  }
  if (!wasFinal) setTimeout(tick, delay);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) delay = 2000; });
})();
