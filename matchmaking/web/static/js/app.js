// On every page: after a refused form, bring the list of problems into view and focus, so that
// keyboard and screen-reader users start from it.
(function () {
  "use strict";
  var summary = document.getElementById("error-summary") || document.getElementById("report");
  if (summary) {
    summary.focus();
    summary.scrollIntoView({ block: "start" });
  }
})();
