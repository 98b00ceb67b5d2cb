/*
 * StaticHtml (components/static_html.py): a widget body's static part drawn from its HTML —
 * one React component where the Dash layout had dozens. The root element is the subtree's own
 * (a <tr> stays a <tr>, so the HTML inside is parsed in its place); links written by dcc.Link
 * (a[data-dash-link]) navigate inside the app as dcc.Link does: history.pushState and the
 * event dcc.Location listens to, no page reload.
 *
 * Loaded from assets/ before Dash's renderer, which finds components as window[namespace][type].
 */
(function () {
  "use strict";

  function follow(event) {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey
        || event.altKey) {
      return;
    }
    const a = event.target.closest ? event.target.closest("a[data-dash-link]") : null;
    if (!a || !event.currentTarget.contains(a) || (a.target && a.target !== "_self")) {
      return;
    }
    const url = new URL(a.href, window.location.href);
    if (url.origin !== window.location.origin) {
      return;
    }
    event.preventDefault();
    if (a.getAttribute("data-dash-link") === "reload") {
      window.location = url.href;
      return;
    }
    window.history.pushState({}, "", url.pathname + url.search + url.hash);
    window.dispatchEvent(new CustomEvent("_dashprivate_pushstate"));
    window.scrollTo(0, 0);
  }

  function StaticHtml(props) {
    const attrs = Object.assign({}, props.attrs || {});
    if (props.id !== undefined && props.id !== null) {
      attrs.id = props.id;          // Dash passes a dict id already as its string
    }
    if (props.className) {
      attrs.className = props.className;
    }
    if (props.style) {
      attrs.style = props.style;
    }
    attrs["data-qms-static"] = "";
    attrs.onClick = follow;
    attrs.dangerouslySetInnerHTML = {__html: props.html || ""};
    return window.React.createElement(props.tag || "div", attrs);
  }

  window.qms_static = {StaticHtml: StaticHtml};
})();
