// New curation run: the max-token defaults follow the model. The demo model (SmolLM2-135M on the
// CPU) gets short limits so the demo finishes in minutes; any other model gets the usual
// defaults (Sky-T1's 16384 for the reformatter). Only a value still at one of the two defaults
// is switched: a number the user typed is left alone.
(function () {
  "use strict";
  function same(a, b) { return (a || "").trim().replace(/\/+$/, "") === (b || "").trim().replace(/\/+$/, ""); }
  function follow(modelId, tokensId) {
    var model = document.getElementById(modelId);
    var tokens = document.getElementById(tokensId);
    if (!model || !tokens || !model.dataset.demoModel) return;
    function sync() {
      var effective = model.value.trim() || model.dataset.configured || "";
      var demo = same(effective, model.dataset.demoModel);
      var want = demo ? tokens.dataset.demo : tokens.dataset.default;
      var other = demo ? tokens.dataset.default : tokens.dataset.demo;
      if (tokens.value === other) tokens.value = want;
    }
    model.addEventListener("input", sync);
    sync();
  }
  follow("id_model", "id_max_tokens");
  follow("id_reformat_model", "id_reformat_max_tokens");
})();
