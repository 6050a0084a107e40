// hazmon console: the only script. Each box with data-poll (the active alarms; at the bureau the
// alarm list and the region's red/orange alarms) polls its server-rendered fragment and swaps it
// in; a 401 means the session ended: reload, the server sends the sign-in page.
(function () {
  "use strict";
  document.querySelectorAll(".js-back").forEach(function (a) {
    a.addEventListener("click", function (e) { e.preventDefault(); history.back(); });
  });
  var live = document.getElementById("live");
  function watch(box) {
    var url = box.getAttribute("data-poll");
    var every = 1000 * (parseInt(box.getAttribute("data-every"), 10) || 5);
    function poll() {
      if (document.hidden) { setTimeout(poll, every); return; }
      fetch(url, { headers: { "X-Hazmon-Fragment": "1" }, credentials: "same-origin" })
        .then(function (r) {
          if (r.status === 401) { location.reload(); return null; }
          return r.ok ? r.text() : null;
        })
        .then(function (html) {
          if (html !== null && html !== undefined) {
            var focused = box.contains(document.activeElement);
            if (!focused) { box.innerHTML = html; }
            if (live) { live.classList.remove("stale"); }
          }
        })
        .catch(function () { if (live) { live.classList.add("stale"); } })
        .then(function () { setTimeout(poll, every); });
    }
    setTimeout(poll, every);
  }
  document.querySelectorAll("[data-poll]").forEach(watch);
})();
