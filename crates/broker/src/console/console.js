// Sluice web console: the one script (compiled into the broker). An opt-in auto-refresh:
// when the header's checkbox is ticked, the page reloads every 5 s (the lag refresh
// interval); the choice is kept in localStorage. Pages work the same without it.
(function () {
  "use strict";
  var box = document.getElementById("auto-refresh");
  if (!box) { return; }
  var key = "sluice-console-auto-refresh";
  box.checked = window.localStorage.getItem(key) === "1";
  var timer = null;
  function arm() {
    if (timer) { clearTimeout(timer); timer = null; }
    if (box.checked) { timer = setTimeout(function () { window.location.reload(); }, 5000); }
  }
  box.addEventListener("change", function () {
    window.localStorage.setItem(key, box.checked ? "1" : "0");
    arm();
  });
  arm();
})();
