/* AG Grid cell renderers (dash-ag-grid looks them up by name in this object).
 *
 * EntityLink: the cell's id as a link to its entity page (components/links.py builds the
 * column: cellRendererParams {kind: workflow|agent|gate|actor, agentPrefix}). "actor" (a
 * reviewer or finder) links only agents. A plain click navigates inside the app like
 * dcc.Link (history.pushState + the event dcc.Location listens for); modified clicks open
 * a new tab as links do.
 * EntityLabels: a "key=value, ..." cell whose row holds the labels object; agent, gate and
 * workflow ids become links.
 */
var dagcomponentfuncs = (window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {});

(function () {
  "use strict";
  var BASES = {workflow: "/workflows/", agent: "/agents/", gate: "/gates/"};

  function hrefOf(kind, value, agentPrefix) {
    if (value === null || value === undefined || value === "") return null;
    value = String(value);
    if (kind === "actor") {
      if (value.indexOf(agentPrefix || "qms-") !== 0) return null;
      kind = "agent";
    }
    var base = BASES[kind];
    return base ? base + encodeURIComponent(value) : null;
  }

  function navigate(event, href) {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey ||
        event.altKey) {
      return;
    }
    event.preventDefault();
    window.history.pushState({}, "", href);
    window.dispatchEvent(new CustomEvent("_dashprivate_pushstate"));
    window.scrollTo(0, 0);
  }

  function link(href, text) {
    return React.createElement("a", {
      href: href, className: "entity-link",
      onClick: function (e) { navigate(e, href); }
    }, text);
  }

  dagcomponentfuncs.EntityLink = function (props) {
    var href = hrefOf(props.kind, props.value, props.agentPrefix);
    var text = props.valueFormatted !== undefined && props.valueFormatted !== null ? props.valueFormatted : props.value;
    if (text === null || text === undefined) return "";
    return href ? link(href, String(text)) : String(text);
  };

  dagcomponentfuncs.EntityLabels = function (props) {
    var labels = (props.data && props.data[props.labelsField || "labels"]) || null;
    var kinds = props.kinds || {};
    if (!labels || typeof labels !== "object") return props.value === null || props.value === undefined ? "" : String(props.value);
    var parts = [];
    Object.keys(labels).sort().forEach(function (key, i) {
      var value = labels[key];
      var href = kinds[key] ? hrefOf(kinds[key], value) : null;
      if (i) parts.push(", ");
      parts.push(key + "=");
      parts.push(href ? link(href, String(value)) : String(value));
    });
    // Children as arguments, not an array: React wants keys on array children.
    return React.createElement.apply(React, ["span", null].concat(parts));
  };
})();
