// Postal code typed: offer the communes that share it, and fill the commune when there is only one.
(function () {
  "use strict";
  document.querySelectorAll("input[data-commune-list]").forEach(function (postal) {
    var list = document.getElementById(postal.getAttribute("data-commune-list"));
    var commune = document.querySelector('input[list="' + list.id + '"]');
    var last = "";
    function lookup() {
      var code = postal.value.trim();
      if (!/^\d{5}$/.test(code) || code === last) { return; }
      last = code;
      fetch("/communes?postal_code=" + encodeURIComponent(code), { headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (communes) {
          list.textContent = "";
          communes.forEach(function (c) {
            var option = document.createElement("option");
            option.value = c.name;
            list.appendChild(option);
          });
          if (communes.length === 1 && commune && !commune.value) { commune.value = communes[0].name; }
        })
        .catch(function () { /* offline: the server checks the commune anyway */ });
    }
    postal.addEventListener("input", lookup);
    postal.addEventListener("change", lookup);
    lookup();
  });
})();
