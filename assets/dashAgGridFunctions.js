/* AG Grid value functions (dash-ag-grid looks them up by name in this object).
 *
 * localTime: an ISO 8601 timestamp (the API's UTC) shown in the viewer's own locale and
 * time zone; anything that is not a time is shown as it is.
 */
var dagfuncs = (window.dashAgGridFunctions = window.dashAgGridFunctions || {});

dagfuncs.localTime = function (value) {
  if (value === null || value === undefined || value === "") return "";
  var t = new Date(value);
  return isNaN(t.getTime()) ? String(value) : t.toLocaleString();
};
