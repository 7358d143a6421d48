// wa-inbox: the agent inbox's behaviour. No inline script anywhere (the CSP forbids it), no eval.
// Live frames arrive over the htmx ws extension as hx-swap-oob fragments; this file places rows
// and bubbles by their data-sort (idempotent upserts), tells the server what the tab shows, and
// runs the composer, keyboard navigation, the 24-h window countdown and the tab title.
(function () {
  "use strict";

  var TITLE = "Inbox · wa-inbox";
  var $ = function (sel, root) { return (root || document).querySelector(sel); };
  var $$ = function (sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); };

  // Reconnect fast at first, then back off (jittered) up to 5 s.
  if (window.htmx) {
    // Settling copies "style" attributes with setAttribute, which the CSP (no 'unsafe-inline') refuses.
    htmx.config.attributesToSettle = ["class", "width", "height"];
    htmx.config.wsReconnectDelay = function (retry) {
      return Math.min(250 * Math.pow(2, retry), 5000) * (0.5 + Math.random() * 0.5);
    };
  }

  // ---- what this tab shows, and the socket ---------------------------------------------------
  var socket = null;
  var wasClosed = false;

  function openId() {
    var wrap = document.getElementById("thread-wrap");
    return wrap ? wrap.getAttribute("data-conv") : null;
  }

  function filterValues() {
    var form = document.getElementById("filters");
    var out = {};
    if (!form) return out;
    new FormData(form).forEach(function (value, key) { out[key] = String(value); });
    return out;
  }

  function view() { return { conversation: openId(), filters: filterValues() }; }

  // The sequence of the last live event this tab has seen: after a reconnect the server sends
  // what came after it (or asks for a reload when those events are gone).
  function clock() {
    var el = document.getElementById("live-clock");
    return el ? el.getAttribute("data-seq") : null;
  }

  document.addEventListener("htmx:oobAfterSwap", function () {
    var el = document.getElementById("live-clock");
    if (el && el.getAttribute("data-reload") === "1") window.location.reload();
  });

  function sendView() {
    if (socket) socket.send(JSON.stringify({ type: "view", view: view() }));
  }

  function status(text, sticky) {
    var el = document.getElementById("live-status");
    if (!el) return;
    el.textContent = text;
    el.hidden = !text;
    el.classList.toggle("live-down", !!sticky);
    if (text && !sticky) setTimeout(function () { if (el.textContent === text) { el.hidden = true; el.textContent = ""; } }, 2500);
  }

  document.addEventListener("htmx:wsOpen", function (evt) {
    socket = evt.detail.socketWrapper;
    // The server answers "hello" with everything that changed since the last frame we saw.
    socket.send(JSON.stringify({ type: "hello", since: clock(), view: view() }));
    if (wasClosed) status("Reconnected", false); else status("", false);
    wasClosed = false;
    closedChecks = 0;
  });

  // While the socket is down, ask once in a while whether the session still exists: a server that
  // restarted comes back by itself; a session that ended never will, and the agent is told.
  var closedChecks = 0;
  document.addEventListener("htmx:wsClose", function () {
    wasClosed = true;
    status("Reconnecting…", true);
    if (closedChecks++ % 3 !== 2) return;
    fetch("/profile", { redirect: "manual", credentials: "same-origin", cache: "no-store" }).then(function (r) {
      if (r.type === "opaqueredirect" || r.status === 401) {
        status("", false);
        if (window.waSessionEnded) window.waSessionEnded(null);
      }
    }, function () { /* the server is still away: keep trying */ });
  });

  // ---- idempotent placement of live rows and bubbles -----------------------------------------
  function nearBottom(scroller) {
    return scroller && scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 160;
  }

  function upsert(container, el, descending) {
    var existing = el.id ? document.getElementById(el.id) : null;
    if (descending && !el.hasAttribute("data-remove")) noticeRow(existing, el);
    if (el.hasAttribute("data-remove")) { if (existing) existing.remove(); return null; }
    if (container.id === "thread-items" && el.getAttribute("data-conv") !== openId()) return null;
    var hadFocus = existing && existing.contains(document.activeElement);
    var key = el.getAttribute("data-sort") || "";
    if (existing && existing.parentNode === container && existing.getAttribute("data-sort") === key) {
      existing.replaceWith(el);
    } else {
      if (existing) existing.remove();
      var before = null;
      var children = container.children;
      for (var i = 0; i < children.length; i++) {
        var k = children[i].getAttribute("data-sort");
        if (k === null) continue;
        if (descending ? k < key : k > key) { before = children[i]; break; }
      }
      if (!before && descending) {
        // Older than every loaded row while more pages exist: it belongs to a page not loaded yet.
        var more = document.getElementById("conv-more");
        if (more) return null;
      }
      container.insertBefore(el, before);
      var empty = document.getElementById("conv-empty");
      if (empty && descending) empty.remove();
    }
    htmx.process(el);
    decorate(el);
    if (hadFocus) { var f = el.querySelector("a, button") || el; f.focus(); }
    return el;
  }

  document.addEventListener("htmx:oobBeforeSwap", function (evt) {
    var target = evt.detail.target;
    if (!target || (target.id !== "conv-items" && target.id !== "thread-items")) return;
    evt.detail.shouldSwap = false;
    var descending = target.id === "conv-items";
    var scroller = document.getElementById("thread-scroll");
    var stick = !descending && nearBottom(scroller);
    var inboundArrived = false;
    Array.prototype.slice.call(evt.detail.fragment.children).forEach(function (el) {
      var placed = upsert(target, el, descending);
      if (placed && !descending && placed.getAttribute("data-direction") === "inbound") inboundArrived = true;
      // The open conversation counted something unread: the agent is looking at it, so it is read.
      if (placed && descending && placed.id === "conv-" + openId() && placed.getAttribute("data-unread") !== "0") {
        inboundArrived = true;
      }
    });
    if (stick && scroller) scroller.scrollTop = scroller.scrollHeight;
    if (inboundArrived) markReadSoon();
    markOpenRow();
  });

  var readTimer = null;
  function markReadSoon() {
    if (document.visibilityState !== "visible") return;
    clearTimeout(readTimer);
    readTimer = setTimeout(function () {
      var id = openId();
      if (id) htmx.ajax("POST", "/inbox/c/" + id + "/read", { source: "#thread-wrap", swap: "none" });
    }, 400);
  }

  // ---- notifications: what needs this agent, when they are not looking at it ---------------------
  // Chosen with the bell button (the browser asks for permission once); a sound is optional. Only
  // live changes notify: a new conversation, one assigned to me, a customer reply in mine, a note
  // that @mentions me; never the conversation I have open in a tab I am looking at.
  var PREFS = "wa-inbox:notify";
  function prefs() {
    try { return JSON.parse(localStorage.getItem(PREFS) || "{}"); } catch (e) { return {}; }
  }
  function savePrefs(p) { try { localStorage.setItem(PREFS, JSON.stringify(p)); } catch (e) { /* optional */ } }
  function me() { var i = document.getElementById("inbox"); return i ? i.getAttribute("data-user") : ""; }
  function notifyOn() { return prefs().on && "Notification" in window && Notification.permission === "granted"; }
  function showPrefs() {
    var b = document.getElementById("notify-toggle");
    var sound = document.getElementById("notify-sound");
    if (b) { b.textContent = notifyOn() ? "🔔 Notifications on" : "🔕 Notifications off"; b.setAttribute("aria-pressed", String(notifyOn())); }
    if (sound) sound.checked = !!prefs().sound;
  }
  document.addEventListener("click", function (evt) {
    if (!evt.target.closest || !evt.target.closest("#notify-toggle")) return;
    var p = prefs();
    if (notifyOn()) { p.on = false; savePrefs(p); showPrefs(); return; }
    if (!("Notification" in window)) { toast("This browser cannot show notifications."); return; }
    Notification.requestPermission().then(function (answer) {
      p.on = answer === "granted";
      savePrefs(p);
      showPrefs();
      if (!p.on) toast("Notifications are blocked for this site in the browser's settings.");
    });
  });
  document.addEventListener("change", function (evt) {
    if (evt.target.id === "notify-sound") { var p = prefs(); p.sound = evt.target.checked; savePrefs(p); }
  });
  function beep() {
    try {
      var ctx = new (window.AudioContext || window.webkitAudioContext)();
      var osc = ctx.createOscillator();
      var gain = ctx.createGain();
      osc.frequency.value = 880; gain.gain.value = 0.05;
      osc.connect(gain); gain.connect(ctx.destination);
      osc.start(); osc.stop(ctx.currentTime + 0.15);
    } catch (e) { /* no audio here */ }
  }
  function notify(convId, title, body) {
    if (!notifyOn()) return;
    if (convId === openId() && document.visibilityState === "visible" && document.hasFocus()) return;
    var n = new Notification(title, { body: body || "", tag: "wa-inbox-" + convId });
    n.onclick = function () {
      window.focus();
      var link = document.querySelector("#conv-" + convId + " .conv-link");
      if (link) link.click(); else location.href = "/inbox/c/" + convId;
    };
    if (prefs().sound) beep();
  }
  function rowText(el, selector) { var x = el.querySelector(selector); return x ? x.textContent.trim() : ""; }
  function noticeRow(existing, el) {
    var id = el.id.replace("conv-", "");
    var name = rowText(el, ".conv-name");
    var preview = rowText(el, ".conv-preview");
    var unread = Number(el.getAttribute("data-unread") || 0);
    var assignee = el.getAttribute("data-assignee");
    if (!existing) {
      if (unread > 0) notify(id, "New conversation: " + name, preview);
      return;
    }
    var before = existing.getAttribute("data-assignee");
    if (assignee && assignee === me() && before !== me()) { notify(id, "Assigned to you: " + name, preview); return; }
    if (assignee === me() && unread > Number(existing.getAttribute("data-unread") || 0)) notify(id, name, preview);
  }
  // A note that @mentions this agent (the server tells only their tabs, in any conversation).
  document.addEventListener("htmx:oobAfterSwap", function (evt) {
    if (!evt.detail.target || evt.detail.target.id !== "mention-alert") return;
    var el = document.getElementById("mention-alert");  // the new one (the swap replaced the target)
    if (!el || !el.getAttribute("data-conv")) return;
    notify(el.getAttribute("data-conv"), "You were mentioned in a note: " + el.getAttribute("data-name"),
           el.getAttribute("data-text"));
  });

  // ---- small decorations on whatever was just rendered -----------------------------------------
  function localTime(el) {
    var when = new Date(el.getAttribute("datetime"));
    if (isNaN(when)) return;
    var now = new Date();
    var sameDay = when.toDateString() === now.toDateString();
    el.textContent = sameDay ? when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
      : when.toLocaleDateString([], { month: "short", day: "numeric" }) + (el.closest(".msg-foot, .msg-event, .run-when") ?
        " " + when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "");
    el.title = when.toLocaleString();
  }

  // Label colours and the palette's position go into a constructed stylesheet (CSSOM), never into
  // style attributes: the CSP has no 'unsafe-inline', and HTMX's history snapshots copy attributes.
  var sheet = null, paletteSheet = null, colourRules = {};
  function dynamicSheet() {
    if (!sheet && window.CSSStyleSheet && document.adoptedStyleSheets) {
      sheet = new CSSStyleSheet();
      document.adoptedStyleSheets = document.adoptedStyleSheets.concat([sheet]);
    }
    return sheet;
  }

  function decorate(root) {
    root = root || document;
    $$("time[datetime]", root).forEach(localTime);
    $$("[data-colour]", root).forEach(function (el) {
      var c = el.getAttribute("data-colour");
      var s = dynamicSheet();
      if (!s || colourRules[c] || !/^#[0-9a-fA-F]{3,8}$/.test(c)) return;
      colourRules[c] = true;
      s.insertRule('[data-colour="' + c + '"] { --label-colour: ' + c + "; }", s.cssRules.length);
    });
  }

  function refreshTitle() {
    var el = document.getElementById("unread-total");
    var n = el ? parseInt(el.getAttribute("data-count") || "0", 10) : 0;
    document.title = (n > 0 ? "(" + (n > 99 ? "99+" : n) + ") " : "") + TITLE;
  }

  function markOpenRow() {
    var id = openId();
    $$(".conv-row").forEach(function (row) {
      var link = row.querySelector(".conv-link");
      if (row.id === "conv-" + id) { row.classList.add("active"); if (link) link.setAttribute("aria-current", "true"); }
      else { row.classList.remove("active"); if (link) link.removeAttribute("aria-current"); }
    });
  }

  // ---- the 24-h window: countdown, and templates only once it is closed ------------------------
  function refreshWindow() {
    var state = document.getElementById("window-state");
    var area = document.getElementById("composer-area");
    if (!state || !area) return;
    var expires = state.getAttribute("data-expires");
    var left = expires ? new Date(expires) - new Date() : -1;
    var closed = !(left > 0);
    var note = document.getElementById("window-note");
    var wasClosedWindow = area.classList.contains("window-closed");
    area.classList.toggle("window-closed", closed);
    $$('.mode[data-mode="text"], .mode[data-mode="buttons"]', area).forEach(function (b) { b.disabled = closed; });
    var text = document.getElementById("composer-text");
    var mode = currentMode();
    if (text) text.disabled = closed && mode !== "note";
    if (note) {
      if (closed) note.textContent = "The 24-hour window is closed: only templates can be sent until the customer writes again.";
      else {
        var h = Math.floor(left / 3600000), m = Math.floor((left % 3600000) / 60000), s = Math.floor((left % 60000) / 1000);
        note.textContent = "Window open: closes in " + (h ? h + " h " : "") + m + " min" + (h ? "" : " " + s + " s") + ".";
      }
      note.classList.toggle("closing", !closed && left < 2 * 3600000);
    }
    state.textContent = closed ? "24-h window closed: templates only" : "24-h window open";
    if (closed && !wasClosedWindow && mode !== "note" && mode !== "template") setMode("template");
    if (!closed && wasClosedWindow && mode === "template") setMode("text");
  }

  // ---- composer ------------------------------------------------------------------------------------
  function currentMode() {
    var area = document.getElementById("composer-area");
    if (area && area.classList.contains("template-mode")) return "template";
    var m = document.getElementById("composer-mode");
    return m ? m.value : "text";
  }

  function setMode(mode) {
    var area = document.getElementById("composer-area");
    if (!area) return;
    var input = document.getElementById("composer-mode");
    var picker = document.getElementById("template-picker");
    $$(".mode", area).forEach(function (b) { b.setAttribute("aria-checked", String(b.getAttribute("data-mode") === mode)); });
    area.classList.toggle("note-mode", mode === "note");
    area.classList.toggle("template-mode", mode === "template");
    var buttons = document.getElementById("buttons-editor");
    if (buttons) buttons.hidden = mode !== "buttons";
    if (mode !== "note") hidePicker(document.getElementById("mention-menu"));
    if (mode === "template") {
      if (picker) {
        picker.hidden = false;
        if (!picker.children.length) {
          htmx.ajax("GET", "/inbox/c/" + openId() + "/templates", { source: "#composer", target: "#template-picker", swap: "innerHTML" });
        }
      }
      return;
    }
    if (picker) picker.hidden = true;
    if (input) input.value = mode;
    var text = document.getElementById("composer-text");
    if (text) {
      text.placeholder = mode === "note" ? "Write an internal note (only agents see it; @ mentions a teammate)…"
        : "Type a reply… (Enter sends, Shift+Enter new line, / for canned responses)";
    }
    refreshWindow();
  }

  function clearReply() {
    var to = document.getElementById("reply-to");
    var preview = document.getElementById("reply-preview");
    if (to) to.value = "";
    if (preview) preview.hidden = true;
  }

  document.addEventListener("click", function (evt) {
    var t = evt.target;
    if (!t.closest("#composer-area")) hidePicker(document.getElementById("mention-menu"));
    var mode = t.closest(".mode");
    if (mode && !mode.disabled) {
      if (mode.getAttribute("data-mode") === "template") {
        var picker = document.getElementById("template-picker");
        if (picker) picker.hidden = false;
        $$(".mode").forEach(function (b) { b.setAttribute("aria-checked", String(b === mode)); });
        var area = document.getElementById("composer-area");
        area.classList.add("template-mode");
        area.classList.remove("note-mode");
        hidePicker(document.getElementById("mention-menu"));
      } else setMode(mode.getAttribute("data-mode"));
      return;
    }
    if (t.closest(".picker-close")) { setMode(currentMode() === "note" ? "note" : "text"); return; }
    var reply = t.closest(".act-reply");
    if (reply) {
      var msg = document.getElementById("msg-" + reply.getAttribute("data-reply"));
      var text = msg ? (msg.querySelector(".msg-text, .msg-label") || msg).textContent.trim() : "";
      document.getElementById("reply-to").value = reply.getAttribute("data-reply");
      document.getElementById("reply-text").textContent = text.length > 120 ? text.slice(0, 120) + "…" : text;
      document.getElementById("reply-preview").hidden = false;
      document.getElementById("composer-text").focus();
      return;
    }
    if (t.closest(".reply-cancel")) { clearReply(); return; }
    var react = t.closest(".act-react");
    if (react) { openPalette(react); return; }
    if (!t.closest("#react-form")) closePalette();
    if (t.closest(".details-toggle") || t.closest(".details-close")) { toggleDetails(); return; }
    var back = t.closest("[data-back]");
    if (back) { evt.preventDefault(); closeThread(); return; }
    var picked = t.closest(".canned-item, .mention-item");
    if (picked) { choosePicked(picked); return; }
    if (t.id === "composer-text") refreshMention(t);  // the caret moved
  });
  document.addEventListener("keyup", function (evt) {
    if (evt.target.id === "composer-text" && /^(ArrowLeft|ArrowRight|Home|End|PageUp|PageDown)$/.test(evt.key)) refreshMention(evt.target);
  });
  // A click on a picker's item keeps the caret (and focus) in the composer.
  document.addEventListener("mousedown", function (evt) {
    if (evt.target.closest && evt.target.closest(".canned-item, .mention-item")) evt.preventDefault();
  });

  function toggleDetails(force) {
    var thread = document.getElementById("thread");
    if (!thread) return;
    var show = typeof force === "boolean" ? force : !thread.classList.contains("show-details");
    thread.classList.toggle("show-details", show);
    $$(".details-toggle").forEach(function (b) { b.setAttribute("aria-expanded", String(show)); });
    if (show) { var first = $("#side-panel input, #side-panel select"); if (first) first.focus(); }
  }

  function closeThread() {
    var inbox = document.getElementById("inbox");
    var id = openId();
    if (inbox) inbox.classList.remove("has-thread");
    var thread = document.getElementById("thread");
    if (thread) {
      thread.innerHTML = '<div class="thread-empty"><p class="empty">Select a conversation.</p></div>';
      thread.classList.remove("show-details");
    }
    history.pushState({}, "", "/inbox" + (location.search.replace(/([?&])c=[^&]*&?/, "$1").replace(/[?&]$/, "")));
    sendView();
    markOpenRow();
    var row = id && document.querySelector("#conv-" + id + " .conv-link");
    if (row) row.focus();
  }

  // Enter sends, Shift+Enter is a new line; "/" opens canned responses, "@" in a note a teammate.
  // With a picker open, arrows move, Enter or Tab inserts, Escape closes: Enter never sends then.
  document.addEventListener("keydown", function (evt) {
    var t = evt.target;
    if (t.id === "composer-text") {
      if (!evt.isComposing) refreshMention(t);  // the picker matches the text now, however fast the keys came
      var menu = openPicker();
      if (menu && (evt.key === "ArrowDown" || evt.key === "ArrowUp")) { evt.preventDefault(); movePicker(menu, evt.key === "ArrowDown" ? 1 : -1); return; }
      if (menu && (evt.key === "Enter" || evt.key === "Tab") && !evt.isComposing) {
        var sel = $('[role="option"][aria-selected="true"]', menu);
        if (sel) { evt.preventDefault(); choosePicked(sel); return; }
      }
      if (menu && evt.key === "Escape") { evt.preventDefault(); dismissPicker(menu); return; }
      if (evt.key === "Enter" && !evt.shiftKey && !evt.isComposing) {
        evt.preventDefault();
        // "/name" is a canned reply being picked: Enter inserts it (once the list is there), never sends it.
        if (CANNED.test(t.value)) { cannedOnEnter = true; showCanned(t.value, 0); return; }
        if (t.value.trim()) {
          // htmx binds forms once the page has loaded; Enter can come sooner. Bind it now (a no-op once bound).
          var form = document.getElementById("composer");
          if (window.htmx) htmx.process(form);
          form.requestSubmit();
        }
      }
      return;
    }
    keyboardNavigation(evt);
  });

  // Canned replies: "/" then a name. Each keystroke asks for the matching list (debounced); only
  // the answer to what is typed now is shown, at any typing speed. The request is the menu's own,
  // not the composer form's, so nothing the composer does on a send (emptying it) happens.
  var CANNED = /^\/(\S*)$/;
  var cannedTimer = null;
  var cannedAsked = null;    // the text the newest request was for
  var cannedOnEnter = false; // Enter came before the list: insert its first reply when it arrives
  function showCanned(value, delay) {
    var menu = document.getElementById("canned-menu");
    if (!menu) return;
    clearTimeout(cannedTimer);
    cannedTimer = setTimeout(function () {
      cannedAsked = value;
      htmx.ajax("GET", "/inbox/c/" + openId() + "/canned?q=" + encodeURIComponent(CANNED.exec(value)[1]),
        { source: "#canned-menu", target: "#canned-menu", swap: "innerHTML" }).then(function () {
          var text = document.getElementById("composer-text");
          if (!text || text.value !== value || cannedAsked !== value) return;  // typed on meanwhile
          showPicker(menu);
          if (cannedOnEnter) {
            cannedOnEnter = false;
            var first = $(".canned-item", menu);
            if (first) chooseCanned(first);
          }
        });
    }, delay);
  }
  // Drafts: what an agent types in a conversation is kept in this browser until it is sent, across a
  // reload, a server restart or a sign-in.
  function draftKey(id) { return "wa-inbox:draft:" + id; }
  function saveDraft(text) {
    var id = openId();
    if (!id) return;
    try {
      if (text) localStorage.setItem(draftKey(id), text); else localStorage.removeItem(draftKey(id));
    } catch (e) { /* storage full or disabled: drafts are a convenience */ }
  }
  function restoreDraft() {
    var text = document.getElementById("composer-text");
    var id = openId();
    if (!text || !id || text.value) return;
    try { var kept = localStorage.getItem(draftKey(id)); if (kept) text.value = kept; } catch (e) { /* see above */ }
  }

  document.addEventListener("input", function (evt) {
    var t = evt.target;
    if (t.id === "composer-text") {
      saveDraft(t.value);
      refreshMention(t);
      var menu = document.getElementById("canned-menu");
      if (!menu) return;
      cannedOnEnter = false;
      if (!CANNED.test(t.value)) { clearTimeout(cannedTimer); cannedAsked = null; hidePicker(menu); return; }
      showCanned(t.value, 120);
      return;
    }
    if (t.hasAttribute && t.hasAttribute("data-param")) refreshPreview(t.form);
  });

  // ---- the pickers over the composer: "/" canned responses, "@" teammates (one keyboard model) ---
  function openPicker() {
    return $$("#canned-menu, #mention-menu").filter(function (m) { return !m.hidden; })[0] || null;
  }

  function showPicker(menu) {  // its options are in place; the first is selected
    menu.hidden = false;
    var text = document.getElementById("composer-text");
    var sel = $('[role="option"][aria-selected="true"]', menu);
    if (!text) return;
    if (sel && sel.id) text.setAttribute("aria-activedescendant", sel.id); else text.removeAttribute("aria-activedescendant");
  }

  function hidePicker(menu) {
    if (!menu || menu.hidden) return;
    menu.hidden = true;
    var text = document.getElementById("composer-text");
    if (text) text.removeAttribute("aria-activedescendant");
  }

  function dismissPicker(menu) {  // Escape: closed until the agent types on
    menu._dismissed = menu._key || null;
    hidePicker(menu);
  }

  function movePicker(menu, step) {
    var items = $$('[role="option"]:not([aria-disabled="true"])', menu);
    if (!items.length) return;
    var i = items.findIndex(function (x) { return x.getAttribute("aria-selected") === "true"; });
    var next = items[(i + step + items.length) % items.length];
    items.forEach(function (x) { x.setAttribute("aria-selected", String(x === next)); });
    next.scrollIntoView({ block: "nearest" });
    document.getElementById("composer-text").setAttribute("aria-activedescendant", next.id);
  }

  function choosePicked(item) {
    if (item.classList.contains("mention-item")) chooseMention(item); else chooseCanned(item);
  }

  function chooseCanned(item) {
    var text = document.getElementById("composer-text");
    text.value = item.getAttribute("data-text") || "";
    hidePicker(document.getElementById("canned-menu"));
    text.focus();
  }

  // Mentions: in a note, "@" and the first letters of any word of a name list the active teammates
  // (the page carries them, so the list is made here, in step with every key, and no request is
  // made). The chosen one goes in as "@Full Name ", which is what the server looks for.
  var MENTION = /(?:^|\s)@([^\s@][^@\n]{0,79})?$/;
  var MENTION_MAX = 8;

  function teammates() {  // the composer's list (data-people, JSON), read once per composer
    var el = document.getElementById("mention-menu");
    if (!el) return [];
    if (!el._people) {
      try { el._people = JSON.parse(el.getAttribute("data-people") || "[]"); } catch (e) { el._people = []; }
    }
    return el._people;
  }

  function mentionAt(text) {  // the "@…" being typed right before the caret, in a note: {start, query}
    if (currentMode() !== "note" || text.selectionStart !== text.selectionEnd) return null;
    var caret = text.selectionStart;
    var m = MENTION.exec(text.value.slice(0, caret));
    if (!m) return null;
    var query = m[1] || "";
    var start = caret - query.length - 1;
    var menu = document.getElementById("mention-menu");
    var done = menu && menu._done;  // a name just inserted (and still there) is not a query any more
    if (done && done.start === start && caret >= start + done.text.length &&
        text.value.substr(start, done.text.length) === done.text) return null;
    return { start: start, query: query };
  }

  function mentionMatches(query) {
    var q = query.toLowerCase().replace(/\s+/g, " ");
    return teammates().filter(function (person) {
      var words = String(person.name || "").toLowerCase().trim().split(/\s+/);
      for (var i = 0; i < words.length; i++) {
        if (words.slice(i).join(" ").indexOf(q) === 0) return true;
      }
      return false;
    }).slice(0, MENTION_MAX);
  }

  function refreshMention(text) {
    var menu = document.getElementById("mention-menu");
    if (!menu) return;
    var at = mentionAt(text);
    var people = at ? mentionMatches(at.query) : [];
    var key = at ? at.start + ":" + at.query : null;
    if (!people.length || key === menu._dismissed) { hidePicker(menu); menu._key = null; return; }
    menu._dismissed = null;
    if (!menu.hidden && menu._key === key) return;  // the same query: the selection stays
    menu._key = key;
    menu.replaceChildren();
    people.forEach(function (person, i) {
      var li = document.createElement("li");
      li.id = "mention-" + (i + 1);
      li.className = "mention-item";
      li.setAttribute("role", "option");
      li.setAttribute("tabindex", "-1");
      li.setAttribute("aria-selected", String(i === 0));
      li.setAttribute("data-name", person.name);
      var name = document.createElement("strong");
      name.textContent = person.name;  // text, never markup: names may hold any character
      var email = document.createElement("span");
      email.className = "muted";
      email.textContent = person.email || "";
      li.append(name, email);
      menu.appendChild(li);
    });
    showPicker(menu);
  }

  function chooseMention(item) {
    var text = document.getElementById("composer-text");
    var menu = document.getElementById("mention-menu");
    var at = mentionAt(text);
    if (at) {
      var inserted = "@" + item.getAttribute("data-name") + " ";
      text.setRangeText(inserted, at.start, text.selectionStart, "end");
      menu._done = { start: at.start, text: inserted };
      saveDraft(text.value);
    }
    hidePicker(menu);
    menu._key = null;
    text.focus();
  }

  function refreshPreview(form) {
    if (!form) return;
    var values = {};
    $$("[data-param]", form).forEach(function (i) { values[i.getAttribute("data-param")] = i.value; });
    $$("[data-template]", form).forEach(function (p) {
      var part = p.getAttribute("data-part");
      p.textContent = p.getAttribute("data-template").replace(/\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g, function (all, name) {
        return values[part + "-" + name] || all;
      });
    });
  }

  // Sending never blocks: the composer empties at once; a refused send puts the text back.
  var stashed = null;
  document.addEventListener("htmx:beforeRequest", function (evt) {
    if (evt.detail.elt.id !== "composer" || evt.detail.requestConfig.verb !== "post") return;
    var text = document.getElementById("composer-text");
    $$("#canned-menu, #mention-menu").forEach(hidePicker);
    stashed = text.value;
    setTimeout(function () { if (text.value === stashed) text.value = ""; }, 0);  // after htmx read the form
  });

  document.addEventListener("htmx:afterRequest", function (evt) {
    var elt = evt.detail.elt;
    if (elt.id === "composer" && !evt.detail.successful) {
      var text = document.getElementById("composer-text");
      if (text && !text.value && stashed) text.value = stashed;
      return;
    }
    if (!evt.detail.successful) return;
    if (elt.id === "composer") {
      $$('input[name="button"]', elt).forEach(function (b) { b.value = ""; });
      clearReply();
      if (!document.getElementById("composer-text").value) saveDraft("");  // sent: the draft is done
    } else if (elt.id === "attach-form") {
      elt.reset();
      var text = document.getElementById("composer-text");
      if (text) text.value = "";
      clearReply();
    } else if (elt.id === "template-form") {
      setMode("text");
    } else if (elt.id === "react-form") {
      closePalette();
    }
  });

  // ---- attachments: pick, drop or paste; upload progress ---------------------------------------
  function sendFiles(files) {
    var input = document.getElementById("attach-file");
    if (!input || !files || !files.length) return;
    var dt = new DataTransfer();
    dt.items.add(files[0]);
    input.files = dt.files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
  }

  // What WhatsApp takes, said before anything is uploaded (the form carries the limits in MB).
  function tooBig(file, form) {
    var kind = (file.type || "").split("/")[0];
    var limit = kind === "audio" || kind === "video" ? Number(form.getAttribute("data-max-" + kind))
      : Number(form.getAttribute("data-max-other"));
    if (!limit || file.size <= limit * 1024 * 1024) return null;
    var what = kind === "audio" ? "voice notes and audio" : kind === "video" ? "videos" : "files";
    return "“" + file.name + "” is " + (file.size / 1048576).toFixed(1) + " MB; WhatsApp takes " + what +
      " up to " + limit + " MB. Send a smaller file" + (kind === "video" ? " (shorter, or lower quality)." : ".");
  }

  document.addEventListener("change", function (evt) {
    if (evt.target.id === "attach-file" && evt.target.files.length) {
      var problem = tooBig(evt.target.files[0], document.getElementById("attach-form"));
      if (problem) { toast(problem); evt.target.value = ""; return; }
      document.getElementById("attach-caption").value = (document.getElementById("composer-text") || {}).value || "";
      document.getElementById("attach-form").requestSubmit();
    }
  });

  document.addEventListener("htmx:xhr:progress", function (evt) {
    if (evt.detail.elt.id !== "attach-form") return;
    var box = document.getElementById("upload-progress");
    var bar = document.getElementById("upload-bar");
    if (!box || !bar || !evt.detail.lengthComputable) return;
    box.hidden = false;
    bar.value = Math.round((evt.detail.loaded / evt.detail.total) * 100);
    if (bar.value >= 100) setTimeout(function () { box.hidden = true; bar.value = 0; }, 600);
  });

  document.addEventListener("dragover", function (evt) {
    if (evt.target.closest && evt.target.closest("#thread-wrap")) { evt.preventDefault(); document.getElementById("thread-wrap").classList.add("dropping"); }
  });
  document.addEventListener("dragleave", function (evt) {
    var wrap = document.getElementById("thread-wrap");
    if (wrap && evt.target === wrap) wrap.classList.remove("dropping");
  });
  document.addEventListener("drop", function (evt) {
    var wrap = evt.target.closest && evt.target.closest("#thread-wrap");
    if (!wrap) return;
    evt.preventDefault();
    wrap.classList.remove("dropping");
    sendFiles(evt.dataTransfer.files);
  });
  document.addEventListener("paste", function (evt) {
    if (evt.target.id === "composer-text" && evt.clipboardData && evt.clipboardData.files.length) {
      evt.preventDefault();
      sendFiles(evt.clipboardData.files);
    }
  });

  // ---- reactions palette -------------------------------------------------------------------------
  function openPalette(button) {
    var form = document.getElementById("react-form");
    if (!form) return;
    form.setAttribute("hx-post", "/inbox/m/" + button.getAttribute("data-react") + "/react");
    htmx.process(form);
    var r = button.getBoundingClientRect();
    form.hidden = false;
    if (!paletteSheet && window.CSSStyleSheet && document.adoptedStyleSheets) {
      paletteSheet = new CSSStyleSheet();
      document.adoptedStyleSheets = document.adoptedStyleSheets.concat([paletteSheet]);
    }
    if (paletteSheet) {
      paletteSheet.replaceSync("#react-form { top: " + Math.max(8, r.top - form.offsetHeight - 6) + "px; left: " +
        Math.min(window.innerWidth - form.offsetWidth - 8, Math.max(8, r.left)) + "px; }");
    }
    form.querySelector("button").focus();
    form._opener = button;
  }

  function closePalette() {
    var form = document.getElementById("react-form");
    if (form && !form.hidden) { form.hidden = true; if (form._opener) form._opener.focus(); }
  }

  // ---- keyboard: j/k move in the list, Enter opens, Esc goes back -------------------------------
  function keyboardNavigation(evt) {
    var t = evt.target;
    if (evt.key === "Escape") {
      var palette = document.getElementById("react-form");
      if (palette && !palette.hidden) { closePalette(); return; }
      var picker = document.getElementById("template-picker");
      if (picker && !picker.hidden) { setMode("text"); return; }
      var thread = document.getElementById("thread");
      if (thread && thread.classList.contains("show-details")) { toggleDetails(false); return; }
      if (t.closest && t.closest("input, textarea, select")) { t.blur(); return; }
      if (openId()) closeThread();
      return;
    }
    if (evt.ctrlKey || evt.metaKey || evt.altKey) return;
    if (t.closest && t.closest("input, textarea, select, [contenteditable]")) return;
    if (evt.key === "j" || evt.key === "k") {
      var links = $$("#conv-items .conv-link");
      if (!links.length) return;
      evt.preventDefault();
      var i = links.indexOf(document.activeElement);
      if (i < 0) { var current = $("#conv-items .conv-row.active .conv-link"); i = current ? links.indexOf(current) : -1; }
      var next = links[Math.max(0, Math.min(links.length - 1, i + (evt.key === "j" ? 1 : -1)))];
      next.focus();
      next.scrollIntoView({ block: "nearest" });
    } else if (evt.key === "/") {
      evt.preventDefault();
      var search = document.getElementById("search");
      if (search) search.focus();
    }
  }

  // ---- after HTMX swaps --------------------------------------------------------------------------
  var olderHeight = null;
  document.addEventListener("htmx:beforeSwap", function (evt) {
    if (evt.detail.target && evt.detail.target.id === "older") {
      var s = document.getElementById("thread-scroll");
      olderHeight = s ? s.scrollHeight - s.scrollTop : null;
    }
    // A refused form (4xx) shows its reason in the toast instead of replacing anything.
    if (evt.detail.xhr && evt.detail.xhr.status >= 400) {
      evt.detail.shouldSwap = false;
      toast(evt.detail.xhr.status === 413 && !/error-message/.test(evt.detail.xhr.responseText || "")
        ? "This file is too big to send: WhatsApp takes documents up to 100 MB, videos and voice notes up to 16 MB."
        : errorText(evt.detail.xhr.responseText));
    }
  });

  document.addEventListener("htmx:afterSwap", function (evt) {
    var target = evt.detail.target;
    if (!target) return;
    if (target.id === "thread") {
      document.getElementById("inbox").classList.add("has-thread");
      var s = document.getElementById("thread-scroll");
      if (s) s.scrollTop = s.scrollHeight;
      sendView();
      restoreDraft();
      var text = document.getElementById("composer-text");
      if (text && !text.disabled && window.innerWidth > 700) text.focus({ preventScroll: true });
    } else if (target.id === "conv-items") {
      sendView();
    }
    if (olderHeight !== null && document.getElementById("thread-scroll")) {
      var sc = document.getElementById("thread-scroll");
      sc.scrollTop = sc.scrollHeight - olderHeight;
      olderHeight = null;
    }
    decorate(target);
    refreshWindow();
    markOpenRow();
  });

  document.addEventListener("htmx:afterSettle", function () { refreshTitle(); });
  // The Automations section swaps itself (outerHTML): afterSwap names the element it replaced, so its
  // times are put in the agent's own clock when the new one loads.
  document.addEventListener("htmx:load", function (evt) {
    var elt = evt.detail.elt;
    if (elt && (elt.id === "automations" || elt.id === "automation-runs")) decorate(elt);
  });
  // Another agent's assignment, status or priority change: the panel's selects follow (unless being used).
  function syncPanel() {
    var meta = document.getElementById("thread-meta");
    if (!meta) return;
    [["assignee", meta.getAttribute("data-assignee")], ["conv-status", meta.getAttribute("data-status")],
     ["conv-priority", meta.getAttribute("data-priority")]].forEach(function (pair) {
      var select = document.getElementById(pair[0]);
      if (!select || select === document.activeElement || pair[1] === null) return;
      if ($$("option", select).some(function (o) { return o.value === pair[1]; })) select.value = pair[1];
    });
  }

  document.addEventListener("htmx:wsAfterMessage", function () {
    refreshTitle();
    refreshWindow();
    decorate(document.getElementById("thread-meta") || document);
    syncPanel();
  });
  document.addEventListener("htmx:historyRestore", function () { sendView(); markOpenRow(); decorate(); });
  document.addEventListener("templateSent", function () { setMode("text"); });

  // Older messages load when the agent scrolls to the top.
  document.addEventListener("scroll", function (evt) {
    var s = evt.target;
    if (s.id !== "thread-scroll" || s.scrollTop > 80) return;
    var older = document.querySelector("#older button");
    if (older && !older.classList.contains("htmx-request")) older.click();
  }, true);

  function errorText(body) {
    try {
      var doc = new DOMParser().parseFromString(body || "", "text/html");
      var el = doc.querySelector(".error-message, .error-page p");
      return el ? el.textContent : "Something went wrong.";
    } catch (e) { return "Something went wrong."; }
  }

  var toastTimer = null;
  function toast(text) {
    var el = document.getElementById("toast");
    if (!el) return;
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { el.hidden = true; }, 6000);
  }

  document.addEventListener("htmx:sendError", function () { toast("The server cannot be reached. Check your connection."); });

  // The snooze form sends the browser's offset so "until" means the agent's own clock.
  document.addEventListener("submit", function (evt) {
    $$(".tz-offset", evt.target).forEach(function (i) { i.value = String(new Date().getTimezoneOffset()); });
  }, true);
  document.addEventListener("htmx:configRequest", function (evt) {
    var offset = evt.detail.elt && evt.detail.elt.querySelector && evt.detail.elt.querySelector(".tz-offset");
    if (offset) evt.detail.parameters.tz_offset = String(new Date().getTimezoneOffset());
  });

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && openId()) {
      var row = document.getElementById("conv-" + openId());
      if (row && row.getAttribute("data-unread") !== "0") markReadSoon();
    }
  });

  function start() {
    restoreDraft();
    showPrefs();
    decorate(document);
    refreshTitle();
    markOpenRow();
    refreshWindow();
    var s = document.getElementById("thread-scroll");
    if (s) s.scrollTop = s.scrollHeight;
    setInterval(refreshWindow, 1000);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
