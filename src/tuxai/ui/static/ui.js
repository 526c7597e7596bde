// tuxai's dashboard: live updates over server-sent events. The pages are whole without it.
"use strict";
(function () {
  if (!window.EventSource) return;
  var log = document.getElementById("log");
  var ids = [];
  var badges = document.querySelectorAll("[data-state-of]");
  for (var b = 0; b < badges.length && ids.length < 500; b++) {
    if (ids.indexOf(badges[b].dataset.stateOf) < 0) ids.push(badges[b].dataset.stateOf);
  }
  var url = "/ui/events?ids=" + ids.join(",");
  if (log) url += "&job=" + log.dataset.logOf + "&offset=" + log.dataset.offset;
  else {
    var mine = document.querySelector("[data-job-page]");
    if (mine) url += "&job=" + mine.dataset.jobPage;
  }
  if (document.querySelector("[data-gpu]")) url += "&gpus=1";
  else if (document.querySelector("[data-live-chart]")) url += "&samples=1";  // a running job's charts
  var source = new EventSource(url);
  var live = document.getElementById("live");
  source.onopen = function () { if (live) live.hidden = false; };
  source.onerror = function () { if (live) live.hidden = true; };
  source.addEventListener("job", function (event) {
    var change = JSON.parse(event.data);
    var badges = document.querySelectorAll('[data-state-of="' + change.id + '"]');
    for (var i = 0; i < badges.length; i++) {
      badges[i].textContent = change.state;
      badges[i].className = "state state-" + change.state;
    }
    var page = document.querySelector("[data-job-page]");
    if (page && String(change.id) === page.dataset.jobPage && change.state !== "running") {
      document.dispatchEvent(new CustomEvent("tuxai:ended"));  // its charts stop growing
    }
  });
  source.addEventListener("gpus", function (event) {
    var numbers = JSON.parse(event.data);
    var cells = document.querySelectorAll("[data-gpu]");
    for (var i = 0; i < cells.length; i++) {
      var gpu = numbers[cells[i].dataset.gpu];
      if (gpu) cells[i].textContent = gpu[cells[i].dataset.kind];
    }
    document.body.dataset.gpusAt = String(Date.now());
  });
  source.addEventListener("sample", function (event) {  // charts.js appends them to a live chart
    document.dispatchEvent(new CustomEvent("tuxai:sample", { detail: JSON.parse(event.data) }));
  });
  source.addEventListener("log", function (event) {
    if (!log) return;
    var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.textContent += JSON.parse(event.data);
    if (atEnd) log.scrollTop = log.scrollHeight;
  });
})();
