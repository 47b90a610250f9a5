// Listing form: waste code and material family suggested while the title is typed (the user can
// change them), the hazardous-waste notice when the code is hazardous, fields shown for the kind.
(function () {
  "use strict";
  var form = document.getElementById("listing-form");
  if (!form) { return; }
  var title = document.getElementById("f-title");
  var code = document.getElementById("f-low_code");
  var family = document.getElementById("f-material_family");
  var box = document.getElementById("suggestions");
  var list = box.querySelector("ul");
  var label = document.getElementById("code-label");
  var notice = document.getElementById("hazard-notice");
  var hazardBox = document.getElementById("f-hazardous");
  var url = title.getAttribute("data-suggest-url");
  var timer = null;
  var familyTouched = family.value !== "";
  var codeHazardous = false;

  function showHazard() {
    notice.hidden = !(codeHazardous || (hazardBox && hazardBox.checked));
  }

  function setFamily(slug) {
    if (slug && !familyTouched && family.querySelector('option[value="' + slug + '"]')) { family.value = slug; }
  }

  function pick(s) {
    code.value = s.code;
    label.textContent = s.code + " : " + s.label;
    codeHazardous = !!s.hazardous;
    showHazard();
    list.querySelectorAll("button").forEach(function (b) {
      b.setAttribute("aria-pressed", b.getAttribute("data-code") === s.code ? "true" : "false");
    });
  }

  function render(data) {
    list.textContent = "";
    (data.suggestions || []).forEach(function (s) {
      var li = document.createElement("li");
      var b = document.createElement("button");
      b.type = "button";
      b.setAttribute("data-code", s.code);
      b.setAttribute("aria-pressed", code.value.replace(/\s/g, "") === s.code.replace(/\s/g, "") ? "true" : "false");
      var c = document.createElement("span");
      c.className = "code";
      c.textContent = s.code + (s.hazardous ? "*" : "");
      b.appendChild(c);
      b.appendChild(document.createTextNode(s.label));
      if (s.hazardous) {
        var w = document.createElement("span");
        w.className = "badge danger";
        w.textContent = "⚠";
        b.appendChild(document.createTextNode(" "));
        b.appendChild(w);
      }
      b.addEventListener("click", function () { pick(s); });
      li.appendChild(b);
      list.appendChild(li);
    });
    box.hidden = !list.children.length;
    setFamily(data.material_family);
  }

  function ask(params) {
    return fetch(url + "?" + new URLSearchParams(params).toString(), { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .catch(function () { return null; });
  }

  title.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var text = title.value.trim();
      if (text.length < 3) { box.hidden = true; return; }
      var description = document.getElementById("f-description");
      ask({ q: text + (description && description.value ? " " + description.value : "") })
        .then(function (data) { if (data) { render(data); } });
    }, 300);
  });

  code.addEventListener("change", function () {
    var typed = code.value.trim();
    if (!typed) { label.textContent = ""; codeHazardous = false; showHazard(); return; }
    ask({ code: typed }).then(function (data) {
      if (!data) { return; }
      if (data.code) {
        label.textContent = data.code.code + " : " + data.code.label;
        codeHazardous = !!data.code.hazardous;
        setFamily(data.code.material_family);
      } else {
        label.textContent = "";
        codeHazardous = false;
      }
      showHazard();
    });
  });

  family.addEventListener("change", function () { familyTouched = true; });
  if (hazardBox) { hazardBox.addEventListener("change", showHazard); }
  codeHazardous = !notice.hidden && !(hazardBox && hazardBox.checked);

  // Fields that belong to one kind only.
  function showKind() {
    var checked = form.querySelector('input[name="kind"]:checked');
    var kind = checked ? checked.value : "";
    form.querySelectorAll(".need-only").forEach(function (el) { el.hidden = kind === "offer"; });
    form.querySelectorAll(".offer-only").forEach(function (el) { el.hidden = kind === "need"; });
  }
  form.querySelectorAll('input[name="kind"]').forEach(function (r) { r.addEventListener("change", showKind); });
  showKind();
})();
