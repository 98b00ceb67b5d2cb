/* AG Grid on demand: its two scripts (2.2 MB) are left out of the page (factory.AG_GRID, which
 * names them in <meta name="qms-lazy-grid">), and window.dash_ag_grid starts as this stand-in.
 * The first AgGrid the renderer draws loads them, in order, shows "loading grid…" meanwhile,
 * then draws the real component with the same props; grids drawn after that resolve to the
 * real one directly (its script replaces window.dash_ag_grid). A dashboard, which draws no
 * grid, never loads them. */
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="qms-lazy-grid"]');
  if (window.dash_ag_grid || !meta || !window.React) return;
  var urls;
  try { urls = JSON.parse(meta.getAttribute("content") || "[]"); } catch (e) { return; }
  if (!Array.isArray(urls) || !urls.length) return;
  var React = window.React;
  var stand = {};
  var loading = null;

  function addScript(src) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = src;
      s.async = false;
      s.onload = resolve;
      s.onerror = function () { reject(new Error("could not load " + src)); };
      document.head.appendChild(s);
    });
  }
  function load() {
    if (!loading) {
      loading = urls.reduce(function (p, src) { return p.then(function () { return addScript(src); }); },
                            Promise.resolve());
      loading.catch(function () { loading = null; });   // a later grid tries again
    }
    return loading;
  }
  function real() {
    var ns = window.dash_ag_grid;
    return ns && ns !== stand && ns.AgGrid ? ns.AgGrid : null;
  }

  function AgGrid(props) {
    var comp = React.useState(function () { return real(); });
    var Comp = comp[0], setComp = comp[1];
    var failure = React.useState(null);
    var failed = failure[0], setFailed = failure[1];
    React.useEffect(function () {
      var live = true;
      if (!Comp) {
        load().then(function () { if (live) setComp(function () { return real(); }); },
                    function (e) { if (live) setFailed(String(e.message || e)); });
      }
      return function () { live = false; };
    }, []);
    if (Comp) return React.createElement(Comp, props);
    return React.createElement("div", {
      className: ((props.className || "") + " qms-grid-loading small text-body-secondary p-2").trim(),
      style: props.style, id: typeof props.id === "string" ? props.id : undefined, role: "status"
    }, failed ? "The grid could not be loaded: " + failed : "loading grid\u2026");
  }
  stand.AgGrid = AgGrid;
  window.dash_ag_grid = stand;
})();
