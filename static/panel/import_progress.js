// The CSV import's progress page: polls the provisioning operations' states until done.
(function () {
  const box = document.getElementById("import-progress");
  if (!box) return;
  const url = box.dataset.statusUrl;
  function show(s) {
    document.getElementById("progress-bar").style.width = s.percent + "%";
    box.querySelector("[role=progressbar]").setAttribute("aria-valuenow", s.percent);
    // The words come from the page, in its language.
    document.getElementById("progress-text").textContent = box.dataset.finishedText
      .replace("FINISHED", s.finished).replace("TOTAL", s.total);
    document.getElementById("progress-state").textContent =
      s.done ? box.dataset.doneText : box.dataset.workingText;
    document.getElementById("count-succeeded").textContent = s.states.succeeded;
    document.getElementById("count-pending").textContent = s.states.queued + s.states.running;
    document.getElementById("count-failed").textContent = s.states.failed;
  }
  function poll() {
    fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then((r) => r.json())
      .then((s) => { show(s); if (!s.done) setTimeout(poll, 1500); })
      .catch(() => setTimeout(poll, 5000));
  }
  poll();
})();
