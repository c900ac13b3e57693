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
}
if (typeof document$ !== "undefined") {
  document$.subscribe(atlasInit);
} else {
  document.addEventListener("DOMContentLoaded", atlasInit);
}

// ---- Comparison table filters (name, class, year, decoding, set), kept in the address. ----
// Names match folded (data-name holds "nystromformer" for Nyströmformer), so typing
// without accents finds them; the state is the query string (?q=&class=&year=&decode=&set=).
// "set" is "survey" (the models of the survey's Table 1) or "atlas" (those added after it).
function atlasComparison() {
  var table = document.getElementById("comparison-table");
  if (!table || table.dataset.atlasFilter) return;
  table.dataset.atlasFilter = "1";
  var fields = {
    q: document.getElementById("comparison-filter"),
    class: document.getElementById("comparison-class"),
    year: document.getElementById("comparison-year"),
    decode: document.getElementById("comparison-decode"),
    set: document.getElementById("comparison-set"),
  };
  var count = document.getElementById("comparison-count");
  var fold = function (text) {
    return text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  };
  var params = new URLSearchParams(window.location.search);
  Object.keys(fields).forEach(function (key) {
    if (fields[key] && params.has(key)) fields[key].value = params.get(key);
  });
  var apply = function () {
    var text = fold((fields.q && fields.q.value || "").trim());
    var code = fields.class ? fields.class.value : "";
    var year = fields.year ? fields.year.value : "";
    var decode = fields.decode ? fields.decode.value : "";
    var set = fields.set ? fields.set.value : "";
    var shown = 0;
    table.querySelectorAll("tbody tr").forEach(function (row) {
      var classes = (row.dataset.classes || "").split(" ");
      var haystack = (row.dataset.name || "") + " " + fold(row.textContent);
      var visible = (!text || haystack.indexOf(text) >= 0) &&
        (!code || classes.indexOf(code) >= 0) &&
        (!year || row.dataset.year === year) &&
        (!decode || row.dataset.decode === decode) &&
        (!set || row.dataset.set === set);
      row.hidden = !visible;
      if (visible) shown += 1;
    });
    if (count) count.textContent = shown + " shown";
    var next = new URLSearchParams();
    Object.keys(fields).forEach(function (key) {
      if (fields[key] && fields[key].value) next.set(key, fields[key].value);
    });
    var query = next.toString();
    var address = window.location.pathname + (query ? "?" + query : "") + window.location.hash;
    window.history.replaceState(window.history.state, "", address);
  };
  Object.keys(fields).forEach(function (key) {
    if (fields[key]) fields[key].addEventListener(key === "q" ? "input" : "change", apply);
  });
  apply();
}
if (typeof document$ !== "undefined") {
  document$.subscribe(atlasComparison);
} else {
  document.addEventListener("DOMContentLoaded", atlasComparison);
}
