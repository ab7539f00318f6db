// The Content-Security-Policy allows no inline style: bars get their width from data-width.
document.querySelectorAll("[data-width]").forEach(function (bar) {
  bar.style.width = Math.max(0, Math.min(100, Number(bar.dataset.width) || 0)) + "%";
});
