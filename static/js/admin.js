// Admin screens: copy buttons, and letting htmx show forms that come back with field errors.
// No inline scripts or handlers anywhere: the CSP forbids them, so behaviour hangs off data attributes.
"use strict";

(function () {
  // Answers with field errors (422), conflicts (409) and oversize uploads (413) carry the re-rendered
  // form: swap them in like a success so the errors appear next to the fields.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (status === 409 || status === 413 || status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain http on a LAN address is not a secure context: fall back to a selection copy.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    var ok = document.execCommand("copy");
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy failed"));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) return;
    var status = button.parentElement.querySelector(".copied");
    copyText(source.textContent.trim()).then(function () {
      if (status) status.textContent = "Copied";
      button.classList.add("done");
      setTimeout(function () { if (status) status.textContent = ""; button.classList.remove("done"); }, 2000);
    }, function () {
      if (status) status.textContent = "Select the text and copy it by hand";
    });
  });

  // Show only the inputs that matter for the chosen header or button type.
  function syncDependents(select) {
    var scope = select.closest("[data-depends-scope]") || document;
    var value = select.value;
    scope.querySelectorAll("[data-show-when]").forEach(function (el) {
      if (el.getAttribute("data-depends-on") !== select.name) return;
      var wanted = el.getAttribute("data-show-when").split(" ");
      el.hidden = wanted.indexOf(value) === -1;
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches("select[data-controls]")) syncDependents(event.target);
  });
  function syncAll() {
    document.querySelectorAll("select[data-controls]").forEach(syncDependents);
    // Label colours: set through the CSSOM, since the CSP forbids inline style attributes.
    document.querySelectorAll(".swatch[data-colour]").forEach(function (el) {
      var colour = el.getAttribute("data-colour");
      if (/^#[0-9a-fA-F]{6}$/.test(colour)) el.style.backgroundColor = colour;
    });
  }
  document.addEventListener("DOMContentLoaded", syncAll);
  document.addEventListener("htmx:afterSettle", syncAll);
})();
