// Training launch form: presets, the effective batch as you type, and a live preview of the
// generated LLaMA-Factory files (POSTed to the preview endpoint, debounced).
(function () {
  "use strict";
  var form = document.getElementById("training-form");
  if (!form) return;
  var presets = JSON.parse(document.getElementById("training-presets").textContent);
  var dsText = form.elements.deepspeed_json;
  var dsEdited = dsText.value.trim() !== "";
  var timer = null, seq = 0, checkedSources = null;

  function num(name) { var v = parseInt(form.elements[name].value, 10); return isNaN(v) ? null : v; }

  function effectiveBatch() {
    var parts = ["per_device_train_batch_size", "gradient_accumulation_steps", "gpus_per_node", "nodes"].map(num);
    var out = document.getElementById("effective-batch");
    out.textContent = parts.some(function (p) { return p === null || p < 1; }) ? "–"
      : String(parts.reduce(function (a, b) { return a * b; }, 1));
  }

  function setField(name, value) {
    var el = form.elements[name];
    if (!el) return;
    if (el.type === "checkbox") el.checked = !!value;
    else el.value = value == null ? "" : value;
  }

  function applyPreset(key) {
    var p = presets[key];
    if (!p) return;
    // A preset sets every field it names and clears the optional ones it does not.
    ["max_steps", "max_samples", "interleave_probs", "preprocessing_num_workers"].forEach(function (n) { setField(n, ""); });
    Object.keys(p).forEach(function (k) { if (k !== "label") setField(k, p[k]); });
    setField("preset", key);
    dsText.value = ""; dsEdited = false;
    changed();
  }

  function show(files) {
    ["config.yaml", "deepspeed.json", "dataset_info.json"].forEach(function (name) {
      var pre = document.getElementById("preview-" + name);
      pre.textContent = files[name] || (name === "deepspeed.json" ? "(no DeepSpeed)" : "");
    });
    if (!dsEdited) dsText.value = files["deepspeed.json"] || "";
  }

  // Training sets that overlap an evaluation benchmark: above the form and on the preview.
  function warn(list) {
    var box = document.getElementById("overlap-warnings"), ul = document.getElementById("overlap-list");
    var side = document.getElementById("preview-warnings");
    ul.replaceChildren(); side.replaceChildren();
    list.forEach(function (w) {
      var li = document.createElement("li"); li.textContent = w; ul.appendChild(li);
      var line = document.createElement("div"); line.textContent = "Benchmark overlap: " + w; side.appendChild(line);
    });
    box.hidden = side.hidden = !list.length;
  }

  function preview() {
    var mine = ++seq;
    var data = new FormData(form);
    if (!dsEdited) data.set("deepspeed_json", "");
    // The benchmark-overlap check reads the chosen sets: only when they changed.
    var chosen = data.getAll("sources").join(",");
    data.set("overlap", chosen === checkedSources ? "0" : "1");
    document.getElementById("preview-state").textContent = "updating…";
    fetch(form.dataset.preview, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-CSRFToken": form.elements.csrfmiddlewaretoken.value, Accept: "application/json" }
    }).then(function (r) { return r.json(); }).then(function (res) {
      if (mine !== seq) return;  // a newer edit is already on its way
      var errors = document.getElementById("preview-errors");
      errors.textContent = "";
      if (res.warnings) { warn(res.warnings); checkedSources = chosen; }
      document.getElementById("preview-hint").textContent = res.hint || "";
      var hintOnly = !res.ok && res.hint && !Object.keys(res.errors).length;
      document.getElementById("preview-state").textContent = res.ok || hintOnly ? "" : "(fix the form)";
      if (res.ok) { show(res.files); return; }
      Object.keys(res.errors).forEach(function (field) {
        res.errors[field].forEach(function (e) {
          var line = document.createElement("div");
          line.textContent = (field === "__all__" ? "" : field + ": ") + e.message;
          errors.appendChild(line);
        });
      });
    }).catch(function () { document.getElementById("preview-state").textContent = "(preview unavailable)"; });
  }

  function changed() { effectiveBatch(); clearTimeout(timer); timer = setTimeout(preview, 350); }

  form.addEventListener("input", function (e) {
    if (e.target === dsText) dsEdited = dsText.value.trim() !== "";
    changed();
  });
  form.addEventListener("change", function (e) {
    if (e.target.name === "deepspeed" && !dsEdited) dsText.value = "";
    changed();
  });
  document.querySelectorAll("a[data-preset]").forEach(function (a) {
    a.addEventListener("click", function (e) { e.preventDefault(); applyPreset(a.dataset.preset); });
  });
  effectiveBatch();
  preview();
})();
