// wa-inbox page behaviour. No inline scripts anywhere: the CSP forbids them.
"use strict";

// A session that ended (signed out elsewhere, expired, password changed) answers HTMX requests 401
// with where to sign in (X-Sign-In, which brings the user back to this page): say so, with the link,
// and leave the page as it is so nothing typed is lost.
(function () {
  function sessionEnded(target) {
    var banner = document.getElementById("session-ended");
    if (!banner) {
      banner = document.createElement("div");
      banner.id = "session-ended";
      banner.className = "banner banner-warn";
      banner.setAttribute("role", "alert");
      document.body.insertBefore(banner, document.body.firstChild);
    }
    banner.textContent = "Your session has ended. ";
    var link = document.createElement("a");
    link.href = target || "/login?next=" + encodeURIComponent(location.pathname + location.search);
    link.textContent = "Sign in again";
    banner.appendChild(link);
    banner.appendChild(document.createTextNode(" to continue: what you typed is kept."));
  }
  window.waSessionEnded = sessionEnded;
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var xhr = evt.detail.xhr;
    if (xhr && xhr.status === 401) sessionEnded(xhr.getResponseHeader("X-Sign-In"));
  });
})();
