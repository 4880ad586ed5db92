// The pages' only script: deadlines count down every second. The moment of each deadline comes
// from its data-deadline attribute (set by the server, which knows the calendar); the offset
// between this device's clock and the server's is taken once from <body data-now>, so a phone
// whose clock is wrong still counts the right time.
(function () {
  "use strict";
  var serverNow = Date.parse(document.body.getAttribute("data-now") || "");
  var skew = isNaN(serverNow) ? 0 : serverNow - Date.now();

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function text(seconds) {
    var sign = seconds < 0 ? "-" : "";
    seconds = Math.abs(seconds);
    var days = Math.floor(seconds / 86400), rest = seconds % 86400;
    var hours = Math.floor(rest / 3600), minutes = Math.floor((rest % 3600) / 60), secs = rest % 60;
    return sign + (days ? days + "d " : "") + pad(hours) + ":" + pad(minutes) + ":" + pad(secs);
  }

  function tick() {
    var now = Date.now() + skew;
    var items = document.querySelectorAll("[data-deadline]");
    for (var i = 0; i < items.length; i++) {
      var at = Date.parse(items[i].getAttribute("data-deadline"));
      if (isNaN(at)) { continue; }
      var left = Math.floor((at - now) / 1000);
      items[i].textContent = text(left);
      items[i].classList.toggle("overdue", left < 0);
    }
  }

  tick();
  window.setInterval(tick, 1000);
})();
