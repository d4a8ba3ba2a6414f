// Live training run page: poll the run's small JSON endpoint (state, log tail, checkpoints,
// cost) and its chart endpoint; back off while the tab is hidden or after errors; stop (after
// one last refresh) once the run is final.
(function () {
  "use strict";
  var box = document.getElementById("training-run");
  if (!box) return;
  var FINAL = { succeeded: 1, failed: 1, cancelled: 1 };
  var BASE = 2000, MAX = 60000, delay = BASE, timer = null, lastStep = null, drawn = false;
  var lossEl = document.getElementById("loss-chart"), lrEl = document.getElementById("lr-chart");

  function field(name) { return box.parentNode.querySelector('[data-field="' + name + '"]'); }
  function text(el, v) { if (el) el.textContent = v == null ? "" : String(v); }

  function human(bytes) {
    var units = ["bytes", "KB", "MB", "GB", "TB"], i = 0;
    while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i++; }
    return (i ? bytes.toFixed(1) : bytes) + " " + units[i];
  }

  function checkpoints(list) {
    var table = document.getElementById("checkpoints"), tbody = table.querySelector("tbody");
    var evaluate = table.dataset.evaluate;  // operators: a link to evaluate each checkpoint
    if (!list.length) return;
    var rows = document.createDocumentFragment();
    list.forEach(function (c) {
      var tr = document.createElement("tr");
      [c.is_final ? "final model" : String(c.step), c.path, human(c.size_bytes)].forEach(function (v, i) {
        var td = document.createElement("td");
        if (i === 1) { var code = document.createElement("code"); code.textContent = v; td.appendChild(code); }
        else td.textContent = v;
        tr.appendChild(td);
      });
      var td = document.createElement("td");
      if (evaluate && c.id != null) {
        var a = document.createElement("a");
        a.className = "evaluate-checkpoint"; a.href = evaluate + c.id; a.textContent = "Evaluate this checkpoint";
        td.appendChild(a);
      }
      tr.appendChild(td);
      rows.appendChild(tr);
    });
    tbody.replaceChildren(rows);
  }

  function nodes(list) {
    var tbody = document.querySelector("#nodes tbody");
    if (!tbody || !list || !list.length) return;
    var rows = document.createDocumentFragment();
    list.forEach(function (n) {
      var tr = document.createElement("tr");
      var beat = n.heartbeat_at ? new Date(n.heartbeat_at).toLocaleTimeString() : "—";
      var failure = n.failure_reason ? n.failure_reason + ": " + n.failure_message : "";
      [String(n.rank), n.state, n.worker || "—", beat, n.exit_code == null ? "—" : String(n.exit_code), failure].forEach(function (v, i) {
        var td = document.createElement("td");
        if (i === 1) { var s = document.createElement("span"); s.className = "state state-" + v; s.textContent = v; td.appendChild(s); }
        else td.textContent = v;  // untrusted text: never parsed as HTML
        tr.appendChild(td);
      });
      rows.appendChild(tr);
    });
    tbody.replaceChildren(rows);
  }

  function update(r) {
    var st = field("state"); st.textContent = r.state; st.className = "state state-" + r.state;
    text(field("progress"), r.last_step ? "step " + r.last_step + (r.total_steps ? "/" + r.total_steps : "") : (r.progress && r.progress.stage) || "");
    if (r.failure_message) {
      field("failure").hidden = false;
      text(field("failure_reason"), r.failure_reason);
      text(field("failure_message"), r.failure_message);
    }
    text(field("gpu_hours"), r.gpu_hours.toFixed(4));
    text(field("cost_usd"), r.cost_usd.toFixed(2));
    text(field("final_model"), r.final_model || "—");
    var log = document.getElementById("log-tail");
    var atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    log.textContent = r.log_tail;  // untrusted text: never parsed as HTML
    if (atBottom) log.scrollTop = log.scrollHeight;
    checkpoints(r.checkpoints);
    nodes(r.nodes);
  }

  function refreshChart(force) {
    return fetch(box.dataset.metrics, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (resp) { if (!resp.ok) throw new Error(resp.status); return resp.json(); })
      .then(function (chart) {
        var n = chart.train.step.length, step = n ? chart.train.step[n - 1] : null;
        if (!force && drawn && step === lastStep) return;
        lastStep = step; drawn = true;
        window.skyboardTraining.drawRun(lossEl, lrEl, chart);
        lossEl.dataset.points = String(n);
        text(document.getElementById("chart-note"), chart.bucket > 1
          ? chart.points + " points, " + chart.bucket + " steps per point" : chart.points + " points");
      });
  }

  function schedule() { clearTimeout(timer); timer = setTimeout(tick, delay); }

  function tick() {
    fetch(box.dataset.live, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (resp) { if (!resp.ok) throw new Error(resp.status); return resp.json(); })
      .then(function (r) {
        update(r);
        var final = !!FINAL[r.state];
        return refreshChart(final).then(function () {
          delay = document.hidden ? Math.min(delay * 2, MAX) : BASE;
          if (!final) schedule();
          else if (box.dataset.state !== r.state) location.reload();  // show final actions
        });
      })
      .catch(function () { delay = Math.min(delay * 2, MAX); schedule(); });
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && !FINAL[box.dataset.state]) { delay = BASE; schedule(); }
  });
  refreshChart(true).catch(function () {});
  if (!FINAL[box.dataset.state]) schedule();
})();
