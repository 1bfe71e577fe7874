// textback: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  // --- The reply box's segment counter (GSM-7 or UCS-2, as src/domain/sms_text.rs counts).
  var GSM7 = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var GSM7_EXT = "\f^{}\\[~]|€";

  function segments(text) {
    var chars = Array.from(text);
    if (chars.length === 0) return { n: 0, gsm: true, odd: [] };
    var odd = [];
    var gsm = true;
    chars.forEach(function (c) {
      if (GSM7.indexOf(c) < 0 && GSM7_EXT.indexOf(c) < 0) {
        gsm = false;
        if (odd.indexOf(c) < 0) odd.push(c);
      }
    });
    var units = chars.map(function (c) {
      if (gsm) return GSM7_EXT.indexOf(c) >= 0 ? 2 : 1;
      return c.length; // UTF-16 units: 2 for an emoji
    });
    var single = gsm ? 160 : 70, part = gsm ? 153 : 67;
    var total = units.reduce(function (a, b) { return a + b; }, 0);
    if (total <= single) return { n: 1, gsm: gsm, odd: odd };
    var parts = 1, used = 0;
    units.forEach(function (u) { if (used + u > part) { parts += 1; used = 0; } used += u; });
    return { n: parts, gsm: gsm, odd: odd };
  }

  function wireCounter(root) {
    root.querySelectorAll("textarea[data-segments]").forEach(function (box) {
      var out = document.getElementById(box.getAttribute("data-segments"));
      if (!out) return;
      var update = function () {
        var s = segments(box.value);
        var chars = Array.from(box.value).length;
        var text = chars + " characters · " + s.n + (s.n === 1 ? " segment" : " segments");
        if (!s.gsm) {
          text += " · not plain text (" + s.odd.slice(0, 5).join(" ") + "): 70 characters a segment";
        }
        out.textContent = text;
        out.classList.toggle("over", !s.gsm || s.n > 1);
      };
      box.addEventListener("input", update);
      update();
    });
  }

  // --- What a person has typed, chosen or opened survives a live refresh of the same fragment:
  // fields they changed (compared with the page's own defaults, so fresh server values win
  // for the rest), open disclosures, and where the cursor was.
  function fieldKey(f) {
    var form = f.form ? (f.form.getAttribute("action") || "") : "";
    return form + "|" + f.name;
  }

  function edited(f) {
    if (f.type === "checkbox" || f.type === "radio") return f.checked !== f.defaultChecked;
    if (f.tagName === "SELECT") {
      return Array.prototype.some.call(f.options, function (o) { return o.selected !== o.defaultSelected; });
    }
    return f.value !== f.defaultValue;
  }

  function fields(root) {
    return Array.prototype.filter.call(
      root.querySelectorAll("input[name], textarea[name], select[name]"),
      function (f) { return f.type !== "hidden" && f.type !== "submit" && f.type !== "password"; });
  }

  function disclosures(root) {
    var out = {};
    root.querySelectorAll("details").forEach(function (d, i) {
      var s = d.querySelector("summary");
      out[(s ? s.textContent.trim() : "") + "#" + i] = d;
    });
    return out;
  }

  function keep(root) {
    var state = { values: {}, open: {}, focus: null };
    fields(root).forEach(function (f) {
      if (!edited(f)) return;
      var key = fieldKey(f) + (f.type === "radio" ? "=" + f.value : "");
      state.values[key] = (f.type === "checkbox" || f.type === "radio") ? f.checked : f.value;
    });
    var ds = disclosures(root);
    Object.keys(ds).forEach(function (k) { state.open[k] = ds[k].open; });
    var a = document.activeElement;
    if (a && root.contains(a) && a.name) {
      state.focus = { key: fieldKey(a), start: a.selectionStart, end: a.selectionEnd };
    }
    return state;
  }

  function restore(root, state) {
    fields(root).forEach(function (f) {
      var key = fieldKey(f) + (f.type === "radio" ? "=" + f.value : "");
      if (!(key in state.values)) return;
      if (f.type === "checkbox" || f.type === "radio") f.checked = state.values[key];
      else f.value = state.values[key];
    });
    var ds = disclosures(root);
    Object.keys(ds).forEach(function (k) { if (k in state.open) ds[k].open = state.open[k]; });
    if (state.focus) {
      fields(root).some(function (f) {
        if (fieldKey(f) !== state.focus.key) return false;
        f.focus();
        try { if (state.focus.start !== null) f.setSelectionRange(state.focus.start, state.focus.end); } catch (e) { /* not a text field */ }
        return true;
      });
    }
  }

  // --- Live updates: the server says which conversation changed; the page fetches it again.
  function wireLive() {
    var main = document.querySelector("[data-live]");
    if (!main || !window.EventSource) return;
    var open = main.getAttribute("data-conversation");
    var filter = main.getAttribute("data-filter") || "open";
    var pending = null;
    var changed = {};

    function swap(id, url) {
      return fetch(url, {
        credentials: "same-origin",
        headers: { "Accept": "text/html", "X-Textback-Live": "1" }
      })
        .then(function (r) {
          if (r.redirected || r.status === 401) { window.location.reload(); return null; }
          if (!r.ok) return null;
          var digest = r.headers.get("X-Textback-Digest");
          return r.text().then(function (html) { return { html: html, digest: digest }; });
        })
        .then(function (got) {
          var el = document.getElementById(id);
          if (got === null || !el) return;
          // Unchanged: leave the page as it is (what the person points at stays put).
          if (got.digest && el.getAttribute("data-digest") === got.digest) return;
          var kept = keep(el);
          el.innerHTML = got.html;
          if (got.digest) el.setAttribute("data-digest", got.digest);
          restore(el, kept);
          wireCounter(el);
        })
        .catch(function () {});
    }

    // The list as this page shows it: its filter, its page of older conversations, the open row.
    var before = new URLSearchParams(window.location.search).get("before");
    function listUrl() {
      return "/inbox/list?filter=" + encodeURIComponent(filter) +
        (before ? "&before=" + encodeURIComponent(before) : "") +
        (open ? "&selected=" + encodeURIComponent(open) : "");
    }

    // A thread refreshed while the tab is hidden is not marked read.
    function threadUrl() {
      var seen = document.visibilityState === "visible" ? "?seen=1" : "";
      return "/inbox/c/" + encodeURIComponent(open) + "/thread" + seen;
    }

    function refresh(id) {
      changed[id] = true;
      if (pending) clearTimeout(pending);
      pending = setTimeout(function () {
        pending = null;
        var these = changed;
        changed = {};
        swap("list", listUrl());
        if (open && (these["*"] || these[open])) swap("thread", threadUrl());
      }, 150);
    }

    var source = new EventSource(main.getAttribute("data-live"));
    source.addEventListener("change", function (e) { refresh(e.data); });
    // What happened between the page's render and the stream's start (or while the stream
    // was reconnecting) was never announced on it: catch up once it is open. A reply's
    // delivery can land within milliseconds of the redirect that shows the thread.
    source.addEventListener("open", function () { refresh("*"); });
    document.addEventListener("visibilitychange", function () {
      if (open && document.visibilityState === "visible") swap("thread", threadUrl());
    });
    main.setAttribute("data-live-state", "connected");
  }

  document.addEventListener("DOMContentLoaded", function () {
    wireCounter(document);
    wireLive();
  });
  // --- Saved replies: one tap puts the snippet in the reply box (README.md "Agents on their
  // phones"). Delegated, so live-replaced threads keep working.
  document.addEventListener("click", function (ev) {
    var chip = ev.target.closest ? ev.target.closest("[data-fill]") : null;
    if (!chip) return;
    var box = document.getElementById(chip.getAttribute("data-fill"));
    if (!box) return;
    box.value = chip.getAttribute("data-text") || "";
    box.dispatchEvent(new Event("input", { bubbles: true }));
    box.focus();
  });
})();
