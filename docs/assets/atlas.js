// Behaviour of the atlas's pages: math, sortable and filterable tables.
// Material's document$ fires on every page load (also with instant navigation).
function atlasInit() {
  // Math: arithmatex (generic) wraps formulas in .arithmatex as \( \) or \[ \]; only those
  // elements are rendered, so a "$" in catalog text never turns into math.
  if (typeof renderMathInElement === "function") {
    document.querySelectorAll(".arithmatex").forEach(function (element) {
      renderMathInElement(element, {
        delimiters: [
          { left: "\\(", right: "\\)", display: false },
          { left: "\\[", right: "\\]", display: true },
        ],
        throwOnError: false,
      });
    });
  }
  // Tables: the comparison table, and every plain Markdown table, sort by a click.
  if (typeof Tablesort === "function") {
    document.querySelectorAll("article table.atlas-sortable, article table:not([class])")
      .forEach(function (table) {
        if (!table.dataset.atlasSortable) {
          table.dataset.atlasSortable = "1";
          new Tablesort(table);
        }
      });
  }
  var filter = document.getElementById("comparison-filter");
  var choice = document.getElementById("comparison-class");
  var table = document.getElementById("comparison-table");
  if (filter && choice && table && !table.dataset.atlasFilter) {
    table.dataset.atlasFilter = "1";
    var apply = function () {
      var text = filter.value.trim().toLowerCase();
      var code = choice.value;
      table.querySelectorAll("tbody tr").forEach(function (row) {
        var classes = (row.dataset.classes || "").split(" ");
        var shown = (!text || row.textContent.toLowerCase().indexOf(text) >= 0) &&
          (!code || classes.indexOf(code) >= 0);
        row.hidden = !shown;
      });
    };
    filter.addEventListener("input", apply);
    choice.addEventListener("change", apply);
  }
}
if (typeof document$ !== "undefined") {
  document$.subscribe(atlasInit);
} else {
  document.addEventListener("DOMContentLoaded", atlasInit);
}
