// Loss Functions, Live: point requirejs at the widget modules this site serves itself.
// The base is taken from this script's own address, so the site works at any depth and
// under any sub-path (a project site on GitHub Pages, say) with no request leaving it.
(function () {
  var script = document.currentScript;
  var base = script && script.src ? script.src.replace(/[^/]*$/, "") : "";
  if (window.requirejs && base) {
    window.requirejs.config({ baseUrl: base });
  }

  // The widget embedder typesets control labels through MathJax 2's `MathJax.Hub.Queue`;
  // the site runs MathJax 3, which has no Hub. Give it one that forwards to MathJax 3.
  function shimHub() {
    var mj = window.MathJax;
    if (!mj || mj.Hub) return;
    mj.Hub = {
      Queue: function () {
        for (var i = 0; i < arguments.length; i++) {
          var job = arguments[i];
          if (Array.isArray(job) && job[0] === "Typeset" && job[2] && window.MathJax.typesetPromise) {
            window.MathJax.typesetPromise([job[2]]).catch(function () {});
          }
        }
      },
    };
  }
  shimHub();
  document.addEventListener("DOMContentLoaded", shimHub);
  window.addEventListener("load", shimHub);
})();
