/*
 * Views that stay right whatever draws them (no build step; Dash serves assets/ as is):
 *
 * 1. Back/Forward restore a dashboard's view. The dashboard writes its view (timeframe,
 *    repository/team, gate, agent) into the URL with a history entry per change (url-sync,
 *    callback-nav). Going Back or Forward to another entry of the same page changes only the
 *    query string: the router (which listens to the path) does not run, so the controls still
 *    showed the later view. Here the controls are set from the URL (set_props, which runs the
 *    page's refresh as a click would); the URL is first rewritten in place to the form the
 *    page itself writes, so that refresh adds no new history entry (one would drop Forward).
 *    A different path is the router's: it builds the page from the URL.
 * 2. Figures follow the theme. A theme switch re-templates the charts on screen
 *    (callbacks/pages.py); a chart drawn later by a callback that did not know the theme
 *    still carries the other template, and is re-templated here after it is drawn.
 * 3. A re-drawn figure keeps its height. A responsive figure (no height of its own) sits in
 *    a container whose height is 100% of a parent that has none (one column on a phone):
 *    Plotly draws it at its default 450 px the first time, but a relayout — the theme
 *    switch's, or the one above — redraws it at 100% of nothing: 0 px, until the next refresh
 *    mounts a new graph. So once drawn, such a container gets the height the figure was drawn
 *    at (its width stays fluid).
 */
(function () {
  "use strict";
  if (window.qmsViews) {
    return;                         // injected twice (dev hot reload)
  }

  // URL key(s) -> the control that shows it, and its value as that control holds it.
  const VIEW_CONTROLS = [
    {id: "dash-timeframe", keys: ["timeframe"], value: function (q) { return q.get("timeframe"); }, fallback: "24h"},
    {id: "dash-scope", keys: ["repository", "team"], value: function (q) {
      if (q.get("repository")) { return "repository=" + q.get("repository"); }
      return q.get("team") ? "team=" + q.get("team") : null;
    }},
    {id: "dash-gate", keys: ["gate"], value: function (q) { return q.get("gate") || null; }},
    {id: "dash-agent", keys: ["agent"], value: function (q) { return q.get("agent") || null; }},
  ];

  const views = {restored: 0, retemplated: 0, frozen: 0};
  window.qmsViews = views;          // for browser tests

  function props(id) {
    const api = window.dash_component_api;
    if (!api || typeof api.getLayout !== "function") { return undefined; }
    try {
      const c = api.getLayout(id);
      return c ? (c.props || {}) : undefined;
    } catch (e) {
      return undefined;
    }
  }

  // A control in use on this page: in the layout and not hidden (a dashboard keeps the
  // filters it does not offer in the page, hidden).
  function shown(id) {
    const el = document.getElementById(id);
    return props(id) !== undefined && !!el && el.closest(".d-none") === null;
  }

  function optionValues(p) {
    return (p.options || []).map(function (o) { return o && typeof o === "object" ? o.value : o; });
  }

  // ---- 1. Back/Forward ------------------------------------------------------------------

  let lastPath = window.location.pathname;

  function restoreView() {
    const q = new URLSearchParams(window.location.search);
    const wanted = [];
    VIEW_CONTROLS.forEach(function (c) {
      if (!shown(c.id)) { return; }
      const p = props(c.id);
      let v = c.value(q);
      if (c.fallback !== undefined && optionValues(p).indexOf(v) < 0) { v = c.fallback; }
      wanted.push({c: c, p: p, v: v});
    });
    if (!wanted.length) { return; }
    // The query as the page writes it (keys in this order, missing ones left out).
    const canonical = new URLSearchParams();
    wanted.forEach(function (w) {
      if (w.v === null || w.v === undefined || w.v === "") { return; }
      if (w.c.id === "dash-scope") {
        const i = w.v.indexOf("=");
        canonical.append(w.v.slice(0, i), w.v.slice(i + 1));
      } else {
        canonical.append(w.c.keys[0], w.v);
      }
    });
    const changed = wanted.filter(function (w) { return (w.p.value === undefined ? null : w.p.value) !== w.v; });
    if (!changed.length) { return; }
    const search = "?" + canonical.toString();
    if (search !== window.location.search) {
      window.history.replaceState(window.history.state, "", window.location.pathname + search + window.location.hash);
    }
    changed.forEach(function (w) { window.dash_clientside.set_props(w.c.id, {value: w.v}); });
    views.restored += 1;
  }

  window.addEventListener("popstate", function () {
    const same = window.location.pathname === lastPath;
    lastPath = window.location.pathname;
    if (same && window.dash_clientside && typeof window.dash_clientside.set_props === "function") {
      restoreView();
    }
  });
  window.addEventListener("_dashprivate_pushstate", function () { lastPath = window.location.pathname; });

  // ---- 2 and 3. Figures -------------------------------------------------------------------

  function templates() {
    const p = props("plot-templates");
    return (p && p.data) || null;
  }

  function paper(template) {
    return template && template.layout ? template.layout.paper_bgcolor : undefined;
  }

  // Only a responsive figure Plotly drew on its zero-height fallback (a px svg-container
  // although the figure has no height: its container's 100% did not resolve). In a container
  // of definite height (a grid cell) Plotly draws at 100% and the figure keeps following it.
  function freeze(gd) {
    const box = gd.parentElement;
    const svg = gd.querySelector(".svg-container");
    if (!box || !svg || !gd._fullLayout || !gd._fullLayout.autosize || (gd.layout && gd.layout.height) ||
        !/px$/.test(svg.style.height || "") || /px$/.test(box.style.height || "")) {
      return;
    }
    box.style.height = svg.style.height;
    views.frozen += 1;
  }

  function graphs() {
    return document.querySelectorAll(".js-plotly-plot");
  }

  function adjust(gd) {
    if (gd.__qmsBusy || !window.Plotly || !gd._fullLayout) { return; }
    const all = templates();
    const theme = document.documentElement.getAttribute("data-bs-theme") === "dark" ? "dark" : "light";
    const other = theme === "dark" ? "light" : "dark";
    const has = gd.layout && gd.layout.template;
    // Only a figure drawn with our other theme's template: figures with their own colours
    // (or none) are left as their renderer made them.
    if (!all || !has || paper(has) === undefined || paper(has) !== paper(all[other]) ||
        paper(all[other]) === paper(all[theme])) {
      return;
    }
    views.retemplated += 1;
    gd.__qmsBusy = true;
    Promise.resolve(window.Plotly.relayout(gd, {template: all[theme]})).catch(function (e) { console.debug(e); })
      .then(function () { gd.__qmsBusy = false; });
  }

  function watch(gd) {
    if (gd.__qmsWatched || typeof gd.on !== "function") { return; }
    gd.__qmsWatched = true;
    gd.on("plotly_afterplot", function () { freeze(gd); adjust(gd); });
    freeze(gd);
    adjust(gd);
  }

  let timer = null;
  new MutationObserver(function () {
    if (timer) { return; }
    timer = setTimeout(function () { timer = null; graphs().forEach(watch); }, 50);
  }).observe(document.documentElement, {childList: true, subtree: true});
})();
