// Course website behaviour, on top of sphinx-book-theme 1.3 / pydata-sphinx-theme 0.17
// (checked by tests/test_website.py).
(function () {
  "use strict";
  var MODE_NAMES = { light: "Light", dark: "Dark", auto: "System Settings" };

  // Accessibility (axe-core rule label-content-name-mismatch: a control's accessible name
  // must contain the text it shows).
  function fixLabels() {
    // The search buttons show "Search Ctrl+K" but are named only "Search": let the
    // visible text be the name (the tooltip title stays "Search").
    document.querySelectorAll(".search-button-field[aria-label]").forEach(function (button) {
      button.removeAttribute("aria-label");
    });
    // The colour-mode button shows the current mode's icon, titled "Light", "Dark" or
    // "System Settings", but is named "Color mode": name it after both.
    var mode = MODE_NAMES[document.documentElement.dataset.mode] || MODE_NAMES.auto;
    document.querySelectorAll(".theme-switch-button").forEach(function (button) {
      button.setAttribute("aria-label", "Color mode: " + mode);
    });
  }

  // The sidebar's expand/collapse toggles of chapters with sections are an icon alone
  // (axe-core rule summary-name): name each after its chapter.
  function nameNavToggles() {
    document.querySelectorAll(".bd-sidebar-primary li.has-children > details > summary").forEach(function (summary) {
      var link = summary.closest("li").querySelector(":scope > a");
      if (!summary.textContent.trim() && !summary.hasAttribute("aria-label")) {
        summary.setAttribute("aria-label", "Sections of " + (link ? link.textContent.trim() : "this chapter"));
      }
    });
  }

  // The page's "Download .ipynb / .md" menu opens the file in a new tab; when the server
  // labels a notebook as JSON the browser shows it instead of saving it. Ask for a download.
  function downloadLinks() {
    document.querySelectorAll(
      ".dropdown-download-buttons a.btn-download-notebook-button, " +
      ".dropdown-download-buttons a.btn-download-source-button"
    ).forEach(function (link) {
      link.setAttribute("download", "");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    downloadLinks();
    nameNavToggles();
    fixLabels();
    new MutationObserver(fixLabels).observe(document.documentElement, {
      attributes: true,
      attributeFilter: ["data-mode"],
    });
  });
})();
