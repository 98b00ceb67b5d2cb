// Sign-out is a POST that must carry the CSRF token (a GET or a forged POST signs nobody out).
// The navbar's form is static Dash layout, so the token is copied from its cookie (the one
// Dash's renderer sends as X-CSRFToken) into the form as it is submitted.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form || form.id !== "sign-out-form") {
      return;
    }
    var match = document.cookie.match(/(?:^|;\s*)_csrf_token=([^;]*)/);
    var field = form.querySelector('input[name="csrf_token"]');
    if (!field) {
      field = document.createElement("input");
      field.type = "hidden";
      field.name = "csrf_token";
      form.appendChild(field);
    }
    field.value = match ? decodeURIComponent(match[1]) : "";
  }, true);
})();
