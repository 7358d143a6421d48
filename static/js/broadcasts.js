// Broadcasts screens: the draft form follows the chosen number and template (only that number's templates,
// the template's text, one row per parameter); forms that ask first; the progress fetched again when the
// live socket reconnects (events missed meanwhile). No inline scripts: the CSP forbids them.
"use strict";

(function () {
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
  });

  function syncForm() {
    var number = document.getElementById("f-account_id");
    var template = document.getElementById("f-template");
    if (!number || !template) return;
    var chosenNumber = number.options[number.selectedIndex];
    var waba = chosenNumber ? chosenNumber.getAttribute("data-waba") : null;
    var selected = template.options[template.selectedIndex];
    Array.prototype.forEach.call(template.options, function (option) {
      if (!option.value) return;
      var mine = option.getAttribute("data-waba") === waba;
      option.hidden = !mine;
      option.disabled = !mine;
    });
    if (selected && selected.value && selected.disabled) {
      template.value = "";
      selected = template.options[template.selectedIndex];
    }
    var body = document.getElementById("bc-body");
    var count = 0;
    if (selected && selected.value) {
      body.textContent = selected.getAttribute("data-body");
      count = parseInt(selected.getAttribute("data-params"), 10) || 0;
    } else {
      body.textContent = "Pick a template to read its text.";
    }
    document.querySelectorAll("#bc-params .bc-param").forEach(function (row) {
      row.hidden = parseInt(row.getAttribute("data-index"), 10) >= count;
    });
    var none = document.getElementById("bc-no-params");
    if (none) none.hidden = count > 0 || !(selected && selected.value);
  }
  document.addEventListener("change", function (event) {
    if (event.target.id === "f-account_id" || event.target.id === "f-template") syncForm();
  });
  document.addEventListener("DOMContentLoaded", syncForm);

  // The recipients table follows when the progress says something changed for it: the audience frozen
  // (its total), or the status (completed, cancelled ...). One fetch of this page's table, then.
  function progressKey() {
    var progress = document.getElementById("bc-progress");
    if (!progress) return null;
    return progress.getAttribute("data-status") + ":" + progress.getAttribute("data-total");
  }
  var shownKey = progressKey();
  document.addEventListener("htmx:afterSettle", function () {
    var key = progressKey();
    if (key === null || key === shownKey) return;
    shownKey = key;
    if (document.getElementById("recipients") && window.htmx) {
      window.htmx.ajax("GET", location.pathname + location.search,
                       {target: "#recipients", select: "#recipients", swap: "outerHTML"});
    }
  });

  // After a reconnect the socket does not replay what it missed: fetch the progress once.
  var opened = false;
  document.addEventListener("htmx:wsOpen", function () {
    var progress = document.getElementById("bc-progress");
    if (opened && progress && window.htmx) {
      var id = location.pathname.split("/")[3];
      window.htmx.ajax("GET", "/admin/broadcasts/" + id + "/progress", {target: "#bc-progress", swap: "outerHTML"});
    }
    opened = true;
  });
})();
