// Review pages: keyboard shortcuts (every element with data-key is clicked by its key), the
// raw/reformatted toggle, and KaTeX typesetting of the visible panel in small slices after
// the first paint, so a trace of hundreds of thousands of characters never blocks the page.
(function () {
  "use strict";
  var SLICE = 40; // math spans typeset per frame

  function typeset(panel) {
    if (!panel || panel.hidden || panel.dataset.typeset || !window.renderMathInElement) return;
    panel.dataset.typeset = "1";
    var spans = Array.prototype.slice.call(panel.querySelectorAll(".math"));
    var opts = {
      delimiters: [
        { left: "$$", right: "$$", display: true }, { left: "\\[", right: "\\]", display: true },
        { left: "\\(", right: "\\)", display: false }, { left: "$", right: "$", display: false }
      ],
      throwOnError: false, trust: false, maxExpand: 1000, maxSize: 50
    };
    function step() {
      spans.splice(0, SLICE).forEach(function (s) { window.renderMathInElement(s, opts); });
      if (spans.length) window.requestAnimationFrame(step);
    }
    window.requestAnimationFrame(step);
  }

  function toggle() {
    var ref = document.getElementById("panel-ref"), raw = document.getElementById("panel-raw");
    var label = document.getElementById("view-label"), button = document.getElementById("toggle-view");
    if (!ref || !raw) return;
    var showRaw = raw.hidden;
    raw.hidden = !showRaw;
    ref.hidden = showRaw;
    label.textContent = showRaw ? "raw teacher trace" : "reformatted";
    button.firstChild.textContent = showRaw ? "Show reformatted " : "Show raw ";
    typeset(showRaw ? raw : ref);
  }

  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  var ALIASES = { ArrowRight: "n", ArrowLeft: "p", j: "n", k: "p" };

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) {
      if (e.key === "Escape" && typing(e.target)) e.target.blur();
      return;
    }
    var key = ALIASES[e.key] || e.key;
    if (key === "c") {
      var box = document.querySelector("#comment-form textarea");
      if (box) { e.preventDefault(); box.focus(); }
      return;
    }
    var el = document.querySelector('[data-key="' + key + '"]');
    if (!el) return;
    e.preventDefault();
    if (el.disabled || el.dataset.busy) return;
    if (el.form) el.dataset.busy = "1"; // one submission per key press
    el.click();
  });

  // The script is deferred, so the page is parsed: the toggle works at once (a `t` pressed
  // before the fonts and KaTeX finished loading is not lost); typesetting waits for them.
  var button = document.getElementById("toggle-view");
  if (button) button.addEventListener("click", toggle);
  function init() {
    document.querySelectorAll("#trace-root .panel").forEach(typeset);
  }
  if (document.readyState === "complete") init(); else window.addEventListener("load", init);
})();
