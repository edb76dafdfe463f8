/* Progressive enhancement only: every page works without this file. No inline scripts (CSP). */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  /* What evacuation pages keep offline (rp.evac.*): wiped when signed out (no live stream on the page) and,
   * through this function, by the roll-call page when its alarm ends. */
  window.Rallypoint = window.Rallypoint || {};
  window.Rallypoint.forgetEvacuation = function () {
    try {
      for (var i = window.localStorage.length - 1; i >= 0; i--) {
        var stored = window.localStorage.key(i);
        if (stored && stored.indexOf("rp.evac.") === 0) { window.localStorage.removeItem(stored); }
      }
    } catch (e) { /* storage unavailable */ }
  };
  if (document.body && !document.body.hasAttribute("data-stream")) { window.Rallypoint.forgetEvacuation(); }

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-print]")) { window.print(); }
  });

  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches("select[data-autosubmit]")) { el.form.requestSubmit(); }
    if (el.matches("input[data-select-all]")) {
      var table = el.closest("table");
      table.querySelectorAll("tbody tr:not([hidden]) input[name=selected]").forEach(function (box) {
        box.checked = el.checked;
      });
    }
  });

  /* The menu button: opens and closes the menu at phone width. Wider, the sections stand in one row; where
   * they do not fit (long words, many sections, a narrow window) the header stays compact, with the button. */
  var topbar = document.querySelector("[data-topbar]");
  var menuButton = topbar && topbar.querySelector("[data-menu-button]");
  if (menuButton) {
    var sections = topbar.querySelector(".mainnav ul");
    var setOpen = function (open) {
      menuButton.setAttribute("aria-expanded", open ? "true" : "false");
      topbar.classList.toggle("menu-open", open);
    };
    var fit = function () {
      topbar.classList.remove("compact");
      if (getComputedStyle(menuButton).display === "none" && sections.scrollWidth > sections.clientWidth + 1) {
        topbar.classList.add("compact");
      }
    };
    menuButton.addEventListener("click", function () {
      setOpen(menuButton.getAttribute("aria-expanded") !== "true");
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && topbar.classList.contains("menu-open")) {
        setOpen(false);
        menuButton.focus();
      }
    });
    var pending = false;
    window.addEventListener("resize", function () {
      if (pending) { return; }
      pending = true;
      window.requestAnimationFrame(function () { pending = false; fit(); });
    });
    if (document.fonts && document.fonts.ready) { document.fonts.ready.then(fit); }
    fit();
  }

  /* Passwords are masked; a button shows them on request (shoulder-surfing protection by default). */
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-toggle-password]");
    if (!button) { return; }
    var input = document.getElementById(button.dataset.togglePassword);
    var show = input.type === "password";
    input.type = show ? "text" : "password";
    button.textContent = show ? button.dataset.hide : button.dataset.show;
    button.setAttribute("aria-pressed", show ? "true" : "false");
  });

  document.addEventListener("submit", function (event) {
    var submitter = event.submitter;
    var message = (submitter && submitter.dataset.confirm) || event.target.dataset.confirm;
    if (message && !window.confirm(message)) { event.preventDefault(); }
  });

  /* Type-to-filter on tables: runs in the page, so search terms never reach a URL or a log. */
  document.querySelectorAll("input[data-filter-table]").forEach(function (input) {
    var table = document.getElementById(input.dataset.filterTable);
    var count = document.getElementById(input.dataset.filterCount);
    input.hidden = false;
    input.closest(".filter").hidden = false;
    input.addEventListener("input", function () {
      var needle = input.value.trim().toLowerCase();
      var shown = 0;
      table.querySelectorAll("tbody tr").forEach(function (row) {
        var match = !needle || row.textContent.toLowerCase().indexOf(needle) !== -1;
        row.hidden = !match;
        if (match) { shown += 1; }
      });
      if (count) {
        count.textContent = String(shown);
        count.parentElement.hidden = !needle;  /* a count of matching rows, only while filtering */
      }
    });
  });
})();
