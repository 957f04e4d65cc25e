// madbench leaderboard: sort the table by a header click, filter rows by text and facets.
// Plain DOM, no library, no network; the table is rendered (and escaped) in Python.
(function () {
  "use strict";
  var table = document.getElementById("board");
  if (!table) return;
  var tbody = table.tBodies[0];
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var rows = Array.prototype.slice.call(tbody.rows);
  var filter = document.getElementById("filter");
  var facets = Array.prototype.slice.call(document.querySelectorAll("select.facet"));
  var shown = document.getElementById("shown");

  function key(row, col, numeric) {
    var cell = row.cells[col];
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim().toLowerCase();
    if (!numeric) return raw;
    var x = parseFloat(raw);
    return isNaN(x) ? null : x;
  }

  function sortBy(col) {
    var th = headers[col];
    var numeric = th.getAttribute("data-type") === "num";
    var asc = th.getAttribute("aria-sort") !== "ascending";
    headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var sorted = rows.slice().sort(function (a, b) {
      var x = key(a, col, numeric), y = key(b, col, numeric);
      if (x === null || x === "") return (y === null || y === "") ? 0 : 1; // missing values always last
      if (y === null || y === "") return -1;
      var c = x < y ? -1 : x > y ? 1 : 0;
      return asc ? c : -c;
    });
    sorted.forEach(function (r) { tbody.appendChild(r); });
  }

  function applyFilter() {
    var q = (filter && filter.value || "").trim().toLowerCase();
    var visible = 0;
    rows.forEach(function (r) {
      var ok = !q || r.textContent.toLowerCase().indexOf(q) !== -1;
      facets.forEach(function (s) {
        if (s.value && r.getAttribute("data-" + s.getAttribute("data-facet")) !== s.value) ok = false;
      });
      r.hidden = !ok;
      if (ok) visible++;
    });
    if (shown) shown.textContent = "Showing " + visible + " of " + rows.length + " rows";
    var regime = null;
    facets.forEach(function (s) { if (s.getAttribute("data-facet") === "regime" && s.value) regime = s.value; });
    Array.prototype.forEach.call(document.querySelectorAll(".curve-card"), function (card) {
      card.hidden = regime !== null && card.getAttribute("data-regime") !== regime;
    });
  }

  headers.forEach(function (th, i) {
    th.tabIndex = 0;
    th.addEventListener("click", function () { sortBy(i); });
    th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(i); } });
  });
  if (filter) filter.addEventListener("input", applyFilter);
  facets.forEach(function (s) { s.addEventListener("change", applyFilter); });
  applyFilter();
})();
