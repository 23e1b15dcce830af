// Loss Functions, Live: point requirejs at the widget modules this site serves itself.
// The base is taken from this script's own address, so the site works at any depth and
// under any sub-path (a project site on GitHub Pages, say) with no request leaving it.
(function () {
  var script = document.currentScript;
  var base = script && script.src ? script.src.replace(/[^/]*$/, "") : "";
  if (window.requirejs && base) {
    window.requirejs.config({ baseUrl: base });
  }
})();
