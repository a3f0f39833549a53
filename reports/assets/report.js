// Draws each figure from its data-figure attribute (JSON, escaped by the template) and makes
// tables of class "sortable" sort by a clicked column. No network, no eval.
document.querySelectorAll("div.figure[data-figure]").forEach((div) => {
  const spec = JSON.parse(div.dataset.figure);
  Plotly.newPlot(div, spec.data, spec.layout, {displaylogo: false, responsive: true});
});

function cellValue(row, column) {
  const cell = row.cells[column];
  const raw = cell.dataset.value ?? cell.textContent.trim();
  const number = parseFloat(raw.replace("%", ""));
  return raw === "" || raw === "None" ? -Infinity : (isNaN(number) ? raw.toLowerCase() : number);
}

document.querySelectorAll("table.sortable").forEach((table) => {
  table.querySelectorAll("thead th").forEach((th, column) => {
    th.addEventListener("click", () => {
      const body = table.tBodies[0];
      const descending = th.dataset.order !== "desc";
      table.querySelectorAll("thead th").forEach((other) => delete other.dataset.order);
      th.dataset.order = descending ? "desc" : "asc";
      const rows = Array.from(body.rows);
      rows.sort((a, b) => {
        const x = cellValue(a, column), y = cellValue(b, column);
        const order = x < y ? -1 : x > y ? 1 : 0;
        return descending ? -order : order;
      });
      rows.forEach((row) => body.appendChild(row));
    });
  });
});
