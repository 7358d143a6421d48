// Workflows screens. The editor renders the definition (JSON from <script id="wf-data">) as forms: the
// trigger, the conditions, then the steps as a numbered list whose branches nest; every edit updates the
// definition in place, and Save posts it as JSON in one hidden field. The dry run posts the definition on
// screen (saved or not) and lists what each step would do. Plain DOM, no inline handlers (the CSP).
"use strict";

(function () {
  // Forms that ask first (delete a workflow, stop a run).
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
  });

  var source = document.getElementById("wf-data");
  var root = document.getElementById("wf-editor");
  if (!source || !root) return;
  var data = JSON.parse(source.textContent);
  var opts = data.options;
  var state = data.definition || {};
  var errors = data.errors || {};
  var hosts = {};  // place (dotted path) -> the element that shows its message

  // -- words -----------------------------------------------------------------------------------------
  var TRIGGER_NAMES = {
    message_received: "A customer's message arrives", conversation_opened: "A conversation opens",
    conversation_resolved: "A conversation is resolved", no_agent_reply: "No agent reply for a while",
    no_customer_reply: "No customer reply for a while", contact_created: "A contact is created",
    tag_added: "A tag is added to a contact", tag_removed: "A tag is removed from a contact",
    attribute_changed: "A contact attribute changes", date_reached: "A date in a contact attribute comes",
    segment_entered: "A contact enters a segment", webhook: "Another system calls the workflow's URL",
    manual: "Started by hand (an agent or the API)"
  };
  var NUMBER_TRIGGERS = ["message_received", "conversation_opened", "conversation_resolved", "no_agent_reply",
    "no_customer_reply"];
  var MATCHES = [["any", "Any message"], ["keywords", "Contains one of these words"],
    ["phrase", "Contains one of these phrases"], ["exact", "Is exactly one of these"],
    ["regex", "Matches a regular expression"]];
  var FIELD_NAMES = {
    "tag": "Contact tag", "segment": "Segment", "opted_out": "Opted out of marketing", "contact.name": "Contact name",
    "contact.phone": "Contact phone", "contact.email": "Contact email", "conversation.status": "Conversation status",
    "conversation.assignee": "Assigned agent", "conversation.team": "Conversation team",
    "conversation.label": "Conversation label", "conversation.number": "Number", "message.text": "Message text",
    "business_hours": "Business hours", "answer": "The last answer", "attributes.": "Contact attribute …",
    "vars.": "Run variable …"
  };
  var OP_NAMES = {
    is: "is", is_not: "is not", contains: "contains", not_contains: "does not contain", starts_with: "starts with",
    matches: "matches (regular expression)", gt: "is more than", lt: "is less than", before: "is before",
    after: "is after", has: "has one of the words", has_not: "has none of the words", is_set: "is set",
    is_unset: "is not set", "in": "is one of", not_in: "is none of", open: "open now", closed: "closed now"
  };
  var TEXT_OPS = ["is", "is_not", "contains", "not_contains", "starts_with", "has", "has_not", "matches", "gt", "lt",
    "before", "after", "in", "not_in", "is_set", "is_unset"];
  var FIELD_OPS = {
    "tag": ["has", "has_not", "is_set", "is_unset"], "conversation.label": ["has", "has_not", "is_set", "is_unset"],
    "segment": ["in", "not_in"], "business_hours": ["open", "closed"], "opted_out": ["is", "is_not"],
    "conversation.status": ["is", "is_not", "in", "not_in"], "conversation.assignee": ["is", "is_not", "is_set", "is_unset"],
    "conversation.team": ["is", "is_not", "is_set", "is_unset"], "conversation.number": ["is", "is_not"]
  };
  var LIST_OPS = ["has", "has_not", "in", "not_in"];
  var NO_VALUE_OPS = ["is_set", "is_unset", "open", "closed"];
  var STATUSES = [["open", "Open"], ["pending", "Pending"], ["resolved", "Resolved"], ["snoozed", "Snoozed"]];
  var STEP_NAMES = {};
  opts.step_types.forEach(function (pair) { STEP_NAMES[pair[0]] = pair[1]; });
  var DEFAULTS = {
    send_text: { text: "" }, send_media: { kind: "image", link: "", caption: "" },
    send_buttons: { text: "", buttons: [] }, send_template: { name: "", language: "en", params: [] },
    ask: { question: "", answer_type: "text" }, condition: {}, assign: { to: "round_robin" },
    tags: { add: [], remove: [] }, labels: { add: [], remove: [] }, set_attribute: { key: "", value: "" },
    set_status: { status: "resolved" }, set_priority: { priority: "high" }, note: { text: "" },
    notify: { text: "" }, wait: { minutes: 60 }, http: { method: "POST", url: "" },
    start_workflow: { workflow_id: "" }, jump: { to: "" }, stop: {}
  };

  // -- the definition --------------------------------------------------------------------------------
  function normalize() {
    state.name = state.name || "";
    state.description = state.description || "";
    state.enabled = !!state.enabled;
    state.trigger = state.trigger && typeof state.trigger === "object" ? state.trigger : { type: "message_received" };
    state.conditions = state.conditions && typeof state.conditions === "object" ? state.conditions : {};
    state.conditions.match = state.conditions.match || "all";
    state.conditions.conditions = state.conditions.conditions || [];
    state.steps = Array.isArray(state.steps) ? state.steps : [];
  }
  normalize();

  function clone(value) { return JSON.parse(JSON.stringify(value)); }

  function allIds(steps, out) {
    (steps || []).forEach(function (s) {
      out.push(s.id);
      (s.branches || []).forEach(function (b) { allIds(b.steps, out); });
    });
    return out;
  }

  function newId() {
    var taken = allIds(state.steps, []);
    var id;
    do { id = Math.random().toString(16).slice(2, 10); } while (taken.indexOf(id) !== -1);
    return id;
  }

  function newStep(type) {
    var step = { id: newId(), type: type, params: clone(DEFAULTS[type] || {}), branches: [] };
    if (type === "condition") step.branches = [{ label: "", when: { match: "all", conditions: [] }, steps: [] }];
    return step;
  }

  function cleanParams(step) {
    var p = step.params || {};
    var drop = function (key) { delete p[key]; };
    if (step.type === "ask") {
      if (!p.buttons || !p.buttons.length) drop("buttons");
      if (p.answer_type !== "choice") drop("choices");
      if (!p.save_as) drop("save_as");
    }
    if (step.type === "assign") {
      if (p.to !== "agent") drop("user_id");
      if (p.to !== "team") drop("team_id");
    }
    if (step.type === "set_status" && p.status !== "snoozed") drop("snooze_minutes");
    if (step.type === "notify" && (!p.user_ids || !p.user_ids.length)) drop("user_ids");
    if (step.type === "http") {
      if (!p.body) drop("body");
      if (p.save && !Object.keys(p.save).length) drop("save");
    }
    Object.keys(p).forEach(function (key) { if (p[key] === undefined || p[key] === null) drop(key); });
    (step.branches || []).forEach(function (b) { b.steps.forEach(cleanParams); });
  }

  function definition() {
    var out = clone(state);
    out.steps.forEach(cleanParams);
    Object.keys(out.trigger).forEach(function (key) {
      if (out.trigger[key] === "" || out.trigger[key] === null) delete out.trigger[key];
    });
    if (!out.account_id) delete out.account_id;
    return out;
  }

  // -- DOM helpers -----------------------------------------------------------------------------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) return;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else node.setAttribute(key, value === true ? "" : value);
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined || child === false) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function idOf(path) { return "wf-" + path.replace(/[^A-Za-z0-9]+/g, "-"); }

  function host(path, node) { hosts[path] = node; return node; }

  // A labelled control; ``path`` names it for error messages (the place WORKFLOW_INVALID's details use).
  function field(path, label, control, hint) {
    control.id = control.id || idOf(path);
    var box = el("div", { className: "field" }, [el("label", { "for": control.id, text: label }), control]);
    if (hint) {
      var hintId = control.id + "-hint";
      box.appendChild(el("p", { className: "hint", id: hintId, text: hint }));
      control.setAttribute("aria-describedby", hintId);
    }
    return host(path, box);
  }

  function text(path, label, obj, key, options) {
    options = options || {};
    var control = options.rows ? el("textarea", { rows: options.rows }) :
      el("input", { type: options.type || "text", autocomplete: "off", placeholder: options.placeholder });
    var value = obj[key];
    control.value = value === undefined || value === null ? "" : String(value);
    control.addEventListener("input", function () {
      if (options.number) {
        var raw = control.value.trim();
        obj[key] = raw === "" ? undefined : (/^-?\d+$/.test(raw) ? parseInt(raw, 10) : raw);
      } else {
        obj[key] = control.value;
      }
    });
    return field(path, label, control, options.hint);
  }

  function number(path, label, obj, key, hint) {
    return text(path, label, obj, key, { type: "number", number: true, hint: hint });
  }

  // Words typed as "a, b, c" (or one per line) kept as a list.
  function list(path, label, obj, key, options) {
    options = options || {};
    var lines = options.lines;
    var control = lines ? el("textarea", { rows: 3 }) : el("input", { type: "text", autocomplete: "off" });
    control.value = (obj[key] || []).join(lines ? "\n" : ", ");
    control.addEventListener("input", function () {
      obj[key] = control.value.split(lines ? /\n/ : /,/).map(function (w) { return w.trim(); })
        .filter(function (w) { return w; });
    });
    return field(path, label, control, options.hint || (lines ? "One per line." : "Separated by commas."));
  }

  function choice(path, label, obj, key, choices, options) {
    options = options || {};
    var control = el("select", {});
    if (options.empty !== undefined) control.appendChild(el("option", { value: "", text: options.empty }));
    choices.forEach(function (c) {
      var value = Array.isArray(c) ? c[0] : c.id;
      control.appendChild(el("option", { value: value, text: Array.isArray(c) ? c[1] : c.name }));
    });
    var current = obj[key] === undefined || obj[key] === null ? "" : String(obj[key]);
    control.value = current;
    if (control.value !== current && current) {  // a value the lists no longer have: kept, said so
      control.appendChild(el("option", { value: current, text: current + " (not found)" }));
      control.value = current;
    }
    control.addEventListener("change", function () {
      obj[key] = options.convert ? options.convert(control.value) : control.value;
      if (options.rerender) rerender(control.id);
    });
    return field(path, label, control, options.hint);
  }

  function checkbox(path, label, checked, onChange) {
    var control = el("input", { type: "checkbox", id: idOf(path) });
    control.checked = !!checked;
    control.addEventListener("change", function () { onChange(control.checked); });
    return host(path, el("div", { className: "field wf-check" }, [el("label", { "for": control.id }, [control, " " + label])]));
  }

  function button(label, onClick, attrs) {
    var node = el("button", Object.assign({ type: "button", className: "small" }, attrs || {}), [label]);
    node.addEventListener("click", onClick);
    return node;
  }

  // -- sections --------------------------------------------------------------------------------------
  function renderBasics() {
    var box = el("fieldset", { className: "wf-basics" }, [el("legend", { text: "Workflow" })]);
    box.appendChild(text("name", "Name", state, "name"));
    box.appendChild(text("description", "Description", state, "description", { rows: 2 }));
    box.appendChild(checkbox("enabled", "On: starts runs when its trigger happens", state.enabled,
      function (on) { state.enabled = on; }));
    var limits = el("details", { className: "wf-limits" }, [el("summary", { text: "Sending number and limits" })]);
    limits.appendChild(choice("account_id", "Send from (a contact with no conversation yet)", state, "account_id",
      opts.numbers, { empty: "The workspace's first number" }));
    limits.appendChild(number("max_messages_per_hour", "At most this many messages to one contact per hour",
      state, "max_messages_per_hour", "1 to 100; 5 when empty."));
    limits.appendChild(number("max_runs_per_hour", "At most this many runs for one contact per hour", state,
      "max_runs_per_hour", "1 to 1000; 10 when empty (stops loops between workflows)."));
    if (["account_id", "max_messages_per_hour", "max_runs_per_hour"].some(function (k) { return errors[k]; })) {
      limits.open = true;
    }
    box.appendChild(limits);
    return box;
  }

  function renderOffset(t) {
    // date_reached: offset_minutes shown as an amount, a unit and before / after.
    var minutes = parseInt(t.offset_minutes || 0, 10) || 0;
    var inHours = minutes !== 0 && minutes % 60 === 0;
    var ui = { amount: Math.abs(inHours ? minutes / 60 : minutes), unit: inHours ? "60" : "1",
      dir: minutes < 0 ? "-1" : "1" };
    function update() {
      var amount = parseInt(ui.amount, 10) || 0;
      t.offset_minutes = amount * parseInt(ui.unit, 10) * parseInt(ui.dir, 10);
    }
    var amount = el("input", { type: "number", min: "0", id: "wf-trigger-offset-amount" });
    amount.value = String(ui.amount);
    amount.addEventListener("input", function () { ui.amount = amount.value; update(); });
    var unit = el("select", { id: "wf-trigger-offset-unit" }, [el("option", { value: "1", text: "minutes" }),
      el("option", { value: "60", text: "hours" })]);
    unit.value = ui.unit;
    unit.addEventListener("change", function () { ui.unit = unit.value; update(); });
    var dir = el("select", { id: "wf-trigger-offset-dir" }, [el("option", { value: "-1", text: "before" }),
      el("option", { value: "1", text: "after" })]);
    dir.value = ui.dir;
    dir.addEventListener("change", function () { ui.dir = dir.value; update(); });
    return host("trigger.offset_minutes", el("div", { className: "field wf-inline" }, [
      el("label", { "for": amount.id, text: "When" }), amount,
      el("label", { "for": unit.id, className: "visually-hidden", text: "Unit" }), unit,
      el("label", { "for": dir.id, className: "visually-hidden", text: "Before or after" }), dir,
      el("span", { text: " the date (0: at the date)" })]));
  }

  function renderTrigger() {
    var t = state.trigger;
    var box = host("trigger", el("fieldset", { className: "wf-trigger" }, [el("legend", { text: "Trigger" })]));
    var types = opts.triggers.map(function (type) { return [type, TRIGGER_NAMES[type] || type]; });
    var typeSelect = choice("trigger.type", "Starts when", t, "type", types, {});
    typeSelect.querySelector("select").addEventListener("change", function (event) {
      var keep = NUMBER_TRIGGERS.indexOf(event.target.value) !== -1 ? t.account_id : undefined;
      state.trigger = { type: event.target.value };
      if (keep) state.trigger.account_id = keep;
      if (event.target.value === "message_received") state.trigger.match = "any";
      rerender(event.target.id);
    });
    box.appendChild(typeSelect);
    var type = t.type;
    if (type === "message_received") {
      t.match = t.match || "any";
      box.appendChild(choice("trigger.match", "Which messages", t, "match", MATCHES, { rerender: true }));
      if (["keywords", "phrase", "exact"].indexOf(t.match) !== -1) {
        box.appendChild(list("trigger.keywords", t.match === "keywords" ? "Words" : t.match === "phrase" ? "Phrases" :
          "Texts", t, "keywords", { hint: "Separated by commas; case does not matter." }));
      }
      if (t.match === "regex") box.appendChild(text("trigger.pattern", "Regular expression", t, "pattern"));
    }
    if (type === "no_agent_reply" || type === "no_customer_reply") {
      box.appendChild(number("trigger.minutes", "After how many minutes", t, "minutes"));
      box.appendChild(checkbox("trigger.business_hours", "Count business hours only (an SLA clock)", t.business_hours,
        function (on) { if (on) t.business_hours = true; else delete t.business_hours; }));
    }
    if (type === "tag_added" || type === "tag_removed") box.appendChild(text("trigger.tag", "Tag", t, "tag"));
    if (type === "attribute_changed") {
      box.appendChild(text("trigger.attribute", "Attribute key (empty: any)", t, "attribute"));
    }
    if (type === "date_reached") {
      box.appendChild(text("trigger.attribute", "Date attribute key", t, "attribute",
        { hint: "A date or date-time contact attribute, e.g. appointment_at." }));
      box.appendChild(renderOffset(t));
    }
    if (type === "segment_entered") {
      box.appendChild(choice("trigger.segment_id", "Segment", t, "segment_id", opts.segments,
        { empty: opts.segments.length ? "Choose a segment" : "No segments yet (save one on the Contacts page)" }));
    }
    if (type === "webhook") {
      if (data.webhook_url) {
        var copy = el("button", { type: "button", className: "copy small", "data-copy": "wf-webhook-url",
          "aria-label": "Copy the webhook URL" }, ["Copy"]);
        box.appendChild(el("div", { className: "copyable" }, [
          el("span", { className: "copy-label", id: "wf-webhook-url-label", text: "Webhook URL" }),
          el("code", { id: "wf-webhook-url", "aria-labelledby": "wf-webhook-url-label", text: data.webhook_url }),
          copy, el("span", { className: "copied", role: "status", "aria-live": "polite" })]));
        box.appendChild(el("p", { className: "hint", text: "POST {\"phone\": \"+15551234567\"} or {\"contact_id\": …}, " +
          "optional \"data\" (vars.webhook) and \"id\" (an event id: one run per id). Keep the URL secret." }));
      } else {
        box.appendChild(el("p", { className: "hint", text: "Save the workflow to get its secret URL." }));
      }
    }
    if (NUMBER_TRIGGERS.indexOf(type) !== -1) {
      box.appendChild(choice("trigger.account_id", "On the number", t, "account_id", opts.numbers,
        { empty: "Any number" }));
    }
    return box;
  }

  function opsFor(fieldName) {
    return FIELD_OPS[fieldName] || TEXT_OPS;
  }

  function renderValue(path, row) {
    var f = row.field || "";
    if (NO_VALUE_OPS.indexOf(row.op) !== -1) return null;
    var vpath = path + ".value";
    if (f === "segment") return choice(vpath, "Value", row, "value", opts.segments, { empty: "Choose a segment" });
    if (f === "opted_out") {
      return choice(vpath, "Value", row, "value", [["true", "yes"], ["false", "no"]],
        { convert: function (v) { return v === "true"; } });
    }
    var pick = { "conversation.assignee": opts.users, "conversation.team": opts.teams,
      "conversation.number": opts.numbers }[f];
    if (pick && row.op !== "is_set" && row.op !== "is_unset") return choice(vpath, "Value", row, "value", pick, { empty: "Choose" });
    if (f === "conversation.status" && LIST_OPS.indexOf(row.op) === -1) {
      return choice(vpath, "Value", row, "value", STATUSES, { empty: "Choose" });
    }
    if (LIST_OPS.indexOf(row.op) !== -1) {
      if (!Array.isArray(row.value)) row.value = row.value ? [String(row.value)] : [];
      return list(vpath, "Value", row, "value");
    }
    if (Array.isArray(row.value)) row.value = row.value.join(", ");
    return text(vpath, "Value", row, "value");
  }

  function renderConditions(cond, path, title, empty) {
    var box = host(path, el("fieldset", { className: "wf-conditions" }, [el("legend", { text: title })]));
    if (!cond.conditions.length) box.appendChild(el("p", { className: "hint", text: empty }));
    if (cond.conditions.length > 1) {
      box.appendChild(choice(path + ".match", "Match", cond, "match",
        [["all", "All of these"], ["any", "Any of these"]], {}));
    }
    var rows = el("ol", { className: "wf-cond-rows" });
    cond.conditions.forEach(function (row, i) {
      var rpath = path + ".conditions." + i;
      var f = row.field || "";
      var kind = f.indexOf("attributes.") === 0 ? "attributes." : f.indexOf("vars.") === 0 ? "vars." : f;
      var fields = opts.condition_fields.concat(["attributes.", "vars."]).map(function (name) {
        return [name, FIELD_NAMES[name] || name];
      });
      var item = host(rpath, el("li", { className: "wf-cond-row", "aria-label": "Condition " + (i + 1) }));
      var fieldSelect = el("select", { id: idOf(rpath + ".field") });
      fields.forEach(function (pair) { fieldSelect.appendChild(el("option", { value: pair[0], text: pair[1] })); });
      fieldSelect.value = kind;
      fieldSelect.addEventListener("change", function () {
        row.field = fieldSelect.value;
        if (opsFor(row.field).indexOf(row.op) === -1) row.op = opsFor(row.field)[0];
        row.value = row.field === "opted_out" ? true : null;
        rerender(fieldSelect.id);
      });
      item.appendChild(field(rpath + ".field", "Field", fieldSelect));
      if (kind === "attributes." || kind === "vars.") {
        var key = { value: f.slice(kind.length) };
        var keyInput = text(rpath + ".key", kind === "vars." ? "Variable name" : "Attribute key", key, "value");
        keyInput.querySelector("input").addEventListener("input", function () { row.field = kind + key.value.trim(); });
        item.appendChild(keyInput);
      }
      var ops = opsFor(kind === "attributes." || kind === "vars." ? "" : f);
      if (ops.indexOf(row.op) === -1) row.op = ops[0];
      item.appendChild(choice(rpath + ".op", "Operator", row, "op", ops.map(function (op) {
        return [op, OP_NAMES[op] || op];
      }), { rerender: true }));
      var value = renderValue(rpath, row);
      if (value) item.appendChild(value);
      item.appendChild(button("Remove", function () {
        cond.conditions.splice(i, 1);
        rerender(null);
      }, { className: "small danger", "aria-label": "Remove condition " + (i + 1) }));
      rows.appendChild(item);
    });
    box.appendChild(rows);
    box.appendChild(button("Add condition", function () {
      cond.conditions.push({ field: "message.text", op: "has", value: [] });
      rerender(idOf(path + ".conditions." + (cond.conditions.length - 1) + ".field"));
    }));
    return box;
  }

  // -- steps -----------------------------------------------------------------------------------------
  function stepChoices() {
    var out = [];
    (function walk(steps, prefix) {
      steps.forEach(function (s, i) {
        var label = prefix + (i + 1);
        out.push([s.id, "Step " + label + " · " + (STEP_NAMES[s.type] || s.type) + " (id " + s.id + ")"]);
        (s.branches || []).forEach(function (b, j) { walk(b.steps || [], label + "." + (j + 1) + "."); });
      });
    })(state.steps, "");
    return out;
  }

  function renderParams(step, path) {  // eslint-disable-line complexity
    var p = step.params = step.params || {};
    var pp = path + ".params";
    var box = host(pp, el("div", { className: "wf-params" }));
    var add = function (node) { box.appendChild(node); };
    var textHint = "Use {{contact.name}}, {{attributes.key}}, {{answer}}, {{vars.name}}.";
    switch (step.type) {
      case "send_text":
      case "note":
        add(text(pp + ".text", step.type === "note" ? "Note" : "Text", p, "text", { rows: 3, hint: textHint }));
        break;
      case "notify":
        add(text(pp + ".text", "Message to the agents", p, "text", { rows: 2, hint: textHint }));
        var who = el("fieldset", { className: "wf-people" }, [el("legend", { text: "Agents to notify (none ticked: the assignee)" })]);
        opts.users.forEach(function (u, i) {
          var c = el("input", { type: "checkbox", id: idOf(pp + ".user_ids." + i) });
          c.checked = (p.user_ids || []).indexOf(u.id) !== -1;
          c.addEventListener("change", function () {
            var ids = (p.user_ids || []).filter(function (x) { return x !== u.id; });
            if (c.checked) ids.push(u.id);
            p.user_ids = ids;
          });
          who.appendChild(el("label", { "for": c.id }, [c, " " + u.name]));
        });
        add(host(pp + ".user_ids", who));
        break;
      case "send_media":
        add(choice(pp + ".kind", "Kind", p, "kind", [["image", "Image"], ["video", "Video"], ["audio", "Audio"],
          ["document", "Document"]]));
        add(text(pp + ".link", "Link (https://)", p, "link", { type: "url" }));
        add(text(pp + ".caption", "Caption (optional)", p, "caption"));
        break;
      case "send_buttons":
        add(text(pp + ".text", "Text", p, "text", { rows: 2, hint: textHint }));
        add(list(pp + ".buttons", "Buttons", p, "buttons", { lines: true, hint: "One to three titles, one per line, at most 20 characters each." }));
        break;
      case "send_template":
        add(text(pp + ".name", "Template name", p, "name"));
        add(text(pp + ".language", "Language", p, "language", { placeholder: "en" }));
        add(list(pp + ".params", "Body parameters", p, "params", { lines: true, hint: "In order, one per line; " + textHint }));
        break;
      case "ask":
        add(text(pp + ".question", "Question", p, "question", { rows: 2, hint: textHint }));
        add(choice(pp + ".answer_type", "Answer", p, "answer_type", [["text", "Any text"], ["number", "A number"],
          ["date", "A date"], ["yes_no", "Yes or no"], ["choice", "One of the choices"]], { rerender: true }));
        if (p.answer_type === "choice") add(list(pp + ".choices", "Choices", p, "choices", { lines: true }));
        add(list(pp + ".buttons", "Buttons (optional)", p, "buttons", { lines: true, hint: "Up to three, one per line." }));
        add(text(pp + ".save_as", "Save the answer in the attribute (optional)", p, "save_as"));
        add(number(pp + ".timeout_minutes", "Wait for the answer at most (minutes, optional)", p, "timeout_minutes"));
        add(number(pp + ".retries", "Ask again after a refused answer (times, 0 to 5)", p, "retries"));
        add(text(pp + ".retry_text", "Text when an answer is refused (optional)", p, "retry_text"));
        add(checkbox(path + ".timeout-branch", "If no answer comes in time: go to a “timeout” branch",
          step.branches.length > 0, function (on) {
            step.branches = on ? [{ label: "timeout", steps: [] }] : [];
            rerender(idOf(path + ".timeout-branch"));
          }));
        break;
      case "assign":
        add(choice(pp + ".to", "Assign to", p, "to", [["round_robin", "The next online agent in turn"],
          ["least_open", "The online agent with the fewest open"], ["agent", "An agent"], ["team", "A team"],
          ["unassign", "Nobody (unassign)"]], { rerender: true }));
        if (p.to === "agent") add(choice(pp + ".user_id", "Agent", p, "user_id", opts.users, { empty: "Choose an agent" }));
        if (p.to === "team") add(choice(pp + ".team_id", "Team", p, "team_id", opts.teams, { empty: "Choose a team" }));
        break;
      case "tags":
      case "labels":
        add(list(pp + ".add", step.type === "tags" ? "Add tags" : "Add labels", p, "add"));
        add(list(pp + ".remove", step.type === "tags" ? "Remove tags" : "Remove labels", p, "remove"));
        break;
      case "set_attribute":
        add(text(pp + ".key", "Attribute key", p, "key"));
        add(text(pp + ".value", "Value (empty clears it)", p, "value", { hint: textHint }));
        break;
      case "set_status":
        add(choice(pp + ".status", "Status", p, "status", STATUSES, { rerender: true }));
        if (p.status === "snoozed") add(number(pp + ".snooze_minutes", "Snooze for (minutes)", p, "snooze_minutes"));
        break;
      case "set_priority":
        add(choice(pp + ".priority", "Priority", p, "priority", opts.priorities.map(function (x) {
          return [x, x.charAt(0).toUpperCase() + x.slice(1)];
        })));
        break;
      case "wait":
        var mode = p.until_time !== undefined ? "until_time" : p.attribute !== undefined ? "attribute" : "minutes";
        var modes = { how: mode };
        add(choice(path + ".wait-mode", "Wait", modes, "how", [["minutes", "For some minutes"],
          ["until_time", "Until a time of day"], ["attribute", "Until a date in a contact attribute"]], {}));
        box.lastChild.querySelector("select").addEventListener("change", function (event) {
          var keep = p.end_on_reply;
          Object.keys(p).forEach(function (k) { delete p[k]; });
          if (event.target.value === "minutes") p.minutes = 60;
          if (event.target.value === "until_time") p.until_time = "09:00";
          if (event.target.value === "attribute") { p.attribute = ""; p.offset_minutes = 0; }
          if (keep) p.end_on_reply = true;
          rerender(event.target.id);
        });
        if (mode === "minutes") add(number(pp + ".minutes", "Minutes", p, "minutes"));
        if (mode === "until_time") add(text(pp + ".until_time", "Time of day (HH:MM)", p, "until_time", { type: "time" }));
        if (mode === "attribute") {
          add(text(pp + ".attribute", "Date attribute key", p, "attribute"));
          add(number(pp + ".offset_minutes", "Minutes after it (negative: before)", p, "offset_minutes"));
        }
        add(checkbox(pp + ".end_on_reply", "End the run if the customer replies meanwhile", p.end_on_reply,
          function (on) { if (on) p.end_on_reply = true; else delete p.end_on_reply; }));
        break;
      case "http":
        add(choice(pp + ".method", "Method", p, "method", [["GET", "GET"], ["POST", "POST"], ["PUT", "PUT"], ["PATCH", "PATCH"]]));
        add(text(pp + ".url", "URL", p, "url", { type: "url" }));
        add(text(pp + ".body", "Body (optional; empty: the run's details as JSON)", p, "body", { rows: 3, hint: textHint }));
        var saveBox = { lines: Object.keys(p.save || {}).map(function (k) { return k + " = " + p.save[k]; }).join("\n") };
        var saveField = text(pp + ".save", "Save from the answer", saveBox, "lines",
          { rows: 2, hint: "One per line: attribute_key = json.path (e.g. plan = data.plan)." });
        saveField.querySelector("textarea").addEventListener("input", function () {
          var save = {};
          saveBox.lines.split("\n").forEach(function (line) {
            var at = line.indexOf("=");
            if (at > 0) save[line.slice(0, at).trim()] = line.slice(at + 1).trim();
            else if (line.trim()) save[line.trim()] = "";
          });
          p.save = save;
        });
        add(saveField);
        add(checkbox(path + ".failed-branch", "If the call fails: go to a “failed” branch", step.branches.length > 0,
          function (on) {
            step.branches = on ? [{ label: "failed", steps: [] }] : [];
            rerender(idOf(path + ".failed-branch"));
          }));
        break;
      case "start_workflow":
        add(choice(pp + ".workflow_id", "Workflow", p, "workflow_id", opts.workflows, { empty: "Choose a workflow" }));
        break;
      case "jump":
        add(choice(pp + ".to", "Go to", p, "to", stepChoices(), { empty: "Choose a step" }));
        break;
      case "stop":
        add(el("p", { className: "hint", text: "The run ends here." }));
        break;
    }
    return box;
  }

  function renderBranch(step, branch, b, path, place) {
    var bpath = path + ".branches." + b;
    var isElse = step.type === "condition" && !branch.when;
    var title = step.type !== "condition" ? "If “" + branch.label + "”" :
      isElse ? "Else (when no other branch matches)" : "Branch " + (b + 1) + (branch.label ? ": " + branch.label : "");
    var box = host(bpath, el("div", { className: "wf-branch" + (isElse ? " wf-else" : ""), role: "group",
      "aria-label": place + " › " + title }));
    box.appendChild(el("p", { className: "wf-branch-title", text: title }));
    if (step.type === "condition") {
      box.appendChild(text(bpath + ".label", "Branch name", branch, "label"));
      if (!isElse) {
        branch.when.conditions = branch.when.conditions || [];
        branch.when.match = branch.when.match || "all";
        box.appendChild(renderConditions(branch.when, bpath + ".when", "Taken when",
          "No conditions: always taken."));
      }
      box.appendChild(button("Remove this branch", function () {
        step.branches.splice(b, 1);
        rerender(null);
      }, { className: "small danger", "aria-label": "Remove " + title }));
    }
    branch.steps = branch.steps || [];
    box.appendChild(renderSteps(branch.steps, bpath + ".steps", place + " › " + title.split(" (")[0] + " › step "));
    return box;
  }

  function renderStep(steps, i, path, placePrefix) {
    var step = steps[i];
    step.params = step.params || {};
    step.branches = step.branches || [];
    var spath = path + "." + i;
    var place = placePrefix + (i + 1);
    var card = host(spath, el("li", { className: "wf-step", id: idOf(spath) + "-card", "aria-label": place }));
    var head = el("div", { className: "wf-step-head" }, [
      el("span", { className: "wf-step-num", text: "Step " + (i + 1), title: place })]);
    var typeSelect = el("select", { id: idOf(spath + ".type") });
    opts.step_types.forEach(function (pair) { typeSelect.appendChild(el("option", { value: pair[0], text: pair[1] })); });
    typeSelect.value = step.type;
    typeSelect.addEventListener("change", function () {
      var fresh = newStep(typeSelect.value);
      fresh.id = step.id;
      steps[i] = fresh;
      rerender(typeSelect.id);
    });
    head.appendChild(field(spath + ".type", "Type", typeSelect));
    head.appendChild(el("span", { className: "wf-step-id", text: "id " + step.id }));
    var tools = el("span", { className: "wf-step-tools" });
    tools.appendChild(button("Move up", function () {
      steps.splice(i - 1, 0, steps.splice(i, 1)[0]);
      rerender(idOf(path + "." + (i - 1)) + "-up");
    }, { id: idOf(spath) + "-up", disabled: i === 0, "aria-label": "Move " + place + " up" }));
    tools.appendChild(button("Move down", function () {
      steps.splice(i + 1, 0, steps.splice(i, 1)[0]);
      rerender(idOf(path + "." + (i + 1)) + "-down");
    }, { id: idOf(spath) + "-down", disabled: i === steps.length - 1, "aria-label": "Move " + place + " down" }));
    tools.appendChild(button("Delete", function () {
      var branchesNote = step.branches.some(function (br) { return br.steps && br.steps.length; }) ?
        " and the steps in its branches" : "";
      if (!window.confirm("Delete " + place + branchesNote + "?")) return;
      steps.splice(i, 1);
      rerender(null);
    }, { className: "small danger", "aria-label": "Delete " + place }));
    head.appendChild(tools);
    card.appendChild(head);
    card.appendChild(renderParams(step, spath));
    if (step.branches.length || step.type === "condition") {
      var branches = el("div", { className: "wf-branches" });
      step.branches.forEach(function (branch, b) { branches.appendChild(renderBranch(step, branch, b, spath, place)); });
      if (step.type === "condition") {
        var more = el("div", { className: "wf-branch-tools" });
        more.appendChild(button("Add branch", function () {
          var at = step.branches.findIndex(function (br) { return !br.when; });
          var fresh = { label: "", when: { match: "all", conditions: [] }, steps: [] };
          if (at === -1) step.branches.push(fresh); else step.branches.splice(at, 0, fresh);
          rerender(null);
        }, { "aria-label": "Add a branch to " + place }));
        if (!step.branches.some(function (br) { return !br.when; })) {
          more.appendChild(button("Add else branch", function () {
            step.branches.push({ label: "else", steps: [] });
            rerender(null);
          }, { "aria-label": "Add an else branch to " + place }));
        }
        branches.appendChild(more);
      }
      card.appendChild(branches);
    }
    card.appendChild(el("div", { className: "wf-add" }, [button("Add step after", function () {
      steps.splice(i + 1, 0, newStep("send_text"));
      rerender(idOf(path + "." + (i + 1) + ".type"));
    }, { "aria-label": "Add a step after " + place })]));
    return card;
  }

  function renderSteps(steps, path, placePrefix) {
    var wrap = el("div", { className: "wf-step-list" });
    var olist = host(path, el("ol", { className: "wf-steps" }));
    steps.forEach(function (_, i) { olist.appendChild(renderStep(steps, i, path, placePrefix)); });
    wrap.appendChild(olist);
    if (!steps.length) {
      wrap.appendChild(el("p", { className: "hint", text: "No steps here yet." }));
      wrap.appendChild(button("Add a step", function () {
        steps.push(newStep("send_text"));
        rerender(idOf(path + ".0.type"));
      }, { "aria-label": "Add a step to " + (placePrefix === "step " ? "the workflow" : placePrefix.replace(/ › step $/, "")) }));
    }
    return wrap;
  }

  // -- errors next to their fields -------------------------------------------------------------------
  function placeErrors() {
    var summary = document.getElementById("wf-problems");
    var unplaced = [];
    Object.keys(errors).forEach(function (path, n) {
      var at = path;
      while (at && !hosts[at]) at = at.indexOf(".") === -1 ? "" : at.slice(0, at.lastIndexOf("."));
      var target = hosts[at];
      if (!target) { unplaced.push(path); return; }
      target.classList.add("has-error");
      var message = el("p", { className: "field-error", id: "wf-error-" + n, text: errors[path] });
      var control = at === path ? target.querySelector("input, select, textarea") : null;
      if (control) {
        control.setAttribute("aria-invalid", "true");
        var described = control.getAttribute("aria-describedby");
        control.setAttribute("aria-describedby", (described ? described + " " : "") + message.id);
      }
      if (target.tagName === "LI" || target.tagName === "FIELDSET" || target.tagName === "OL") {
        target.insertBefore(message, target.children[1] || null);
      } else {
        target.appendChild(message);
      }
      if (summary) {  // the summary's line becomes a link to the field
        var line = summary.querySelector('li[data-path="' + path.replace(/"/g, "") + '"] .wf-place');
        var focusable = control || target.querySelector("input, select, textarea, button");
        if (line && focusable && !line.querySelector("a")) {
          var link = el("a", { href: "#" + focusable.id, text: line.textContent });
          link.addEventListener("click", function (event) { event.preventDefault(); focusable.focus(); });
          line.textContent = "";
          line.appendChild(link);
        }
      }
    });
    return unplaced;
  }

  // -- render ----------------------------------------------------------------------------------------
  function rerender(focusId) {
    if (focusId !== undefined) errors = {};  // a change moves things: the old places no longer hold
    hosts = {};
    root.textContent = "";
    root.appendChild(renderBasics());
    root.appendChild(renderTrigger());
    root.appendChild(renderConditions(state.conditions, "conditions", "Only when (conditions)",
      "No conditions: every time the trigger happens."));
    var stepsBox = host("steps", el("section", { className: "wf-steps-box", "aria-labelledby": "wf-steps-title" }, [
      el("h2", { id: "wf-steps-title", text: "Steps" })]));
    stepsBox.appendChild(renderSteps(state.steps, "steps", "step "));
    root.appendChild(stepsBox);
    placeErrors();
    if (focusId) {
      var target = document.getElementById(focusId);
      if (target) target.focus();
    }
  }

  rerender(undefined);
  var summaryBox = document.getElementById("wf-problems");
  if (summaryBox) summaryBox.focus();

  document.getElementById("wf-form").addEventListener("submit", function () {
    document.getElementById("wf-definition").value = JSON.stringify(definition());
  });

  // -- the dry run -----------------------------------------------------------------------------------
  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (e) {
      return "";
    }
  }

  var runButton = document.getElementById("dry-run-button");
  var result = document.getElementById("dry-run-result");
  if (!runButton || !result) return;

  function show(nodes) {
    result.textContent = "";
    nodes.forEach(function (n) { result.appendChild(n); });
  }

  runButton.addEventListener("click", function () {
    var contactId = document.getElementById("dry-contact-id").value.trim() || document.getElementById("dry-contact").value;
    var answers = document.getElementById("dry-answers").value.split("\n").map(function (a) { return a.trim(); })
      .filter(function (a) { return a; });
    var body = { workflow: definition(), contact_id: contactId || null,
      text: document.getElementById("dry-text").value, answers: answers };
    runButton.disabled = true;
    show([el("p", { className: "hint", text: "Running…" })]);
    fetch("/admin/workflows/dry-run", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body)
    }).then(function (response) {
      if (response.status === 401 || response.redirected) {
        throw new Error("Your session has ended: sign in again (what is on this screen is not saved).");
      }
      return response.json().then(function (answer) { return { ok: response.ok, answer: answer }; });
    }).then(function (reply) {
      var answer = reply.answer;
      if (!reply.ok) {
        var nodes = [el("p", { className: "field-error", text: "Not run: " + (answer.error || "refused") })];
        if (answer.error_code === "WORKFLOW_INVALID" && answer.details) {
          var items = el("ul", {});
          Object.keys(answer.details).forEach(function (path) {
            items.appendChild(el("li", { text: ((answer.places || {})[path] || path) + ": " + answer.details[path] }));
          });
          nodes.push(items);
        }
        show(nodes);
        return;
      }
      var lines = el("ol", { className: "wf-dry-lines" });
      answer.steps.forEach(function (line) {
        lines.appendChild(el("li", { className: "wf-outcome-line" }, [
          el("span", { className: "wf-outcome wf-outcome-" + line.outcome, text: line.outcome }), " ",
          el("span", { className: "wf-type", text: (STEP_NAMES[line.type] || line.type) + (line.step_id ? " · " + line.step_id : "") }),
          " ", el("span", { className: "wf-line-text", text: line.text })]));
      });
      show([
        el("p", {}, [el("strong", { text: "Trigger: " }), answer.trigger_matches ? "matches" : "does not match",
          " · ", el("strong", { text: "Conditions: " }), answer.conditions_hold ? "hold" : "do not hold"]),
        answer.steps.length ? lines : el("p", { className: "hint", text: "No steps would run." })]);
    }).catch(function (error) {
      show([el("p", { className: "field-error", text: error.message || "The dry run could not be reached." })]);
    }).then(function () { runButton.disabled = false; });
  });
})();
