// The live socket of the agent's desk and the wallboard (/ws/live), kept open by itself.
//
// The server sends a snapshot first, then every change. When the socket closes (the engine
// restarted, the network dropped, the laptop slept) the page says so and connects again with
// a growing pause (1 s, 2 s, 4 s … at most 10 s), and at once when the tab is shown again or
// the network comes back; a new snapshot then puts the page right. A laptop that slept may
// keep a socket that looks open but is dead: a clock that jumped (the page's 1 s tick came
// much later than 1 s) or a tab hidden for a while is taken as a reason to reconnect now.
// Closed as signed out (4001), the page goes to the log-in and comes back here.
(function () {
  "use strict";
  var SIGNED_OUT = 4001;

  function LiveLink(handlers, query) {
    this.handlers = handlers;
    this.query = query || "";
    this.ws = null;
    this.retryMs = 1000;
    this.timer = null;
    this.hiddenAt = null;
    this.lastTick = Date.now();
    var self = this;
    document.addEventListener("visibilitychange", function () {
      if (document.hidden) { self.hiddenAt = Date.now(); return; }
      var away = self.hiddenAt === null ? 0 : Date.now() - self.hiddenAt;
      self.hiddenAt = null;
      if (!self.isOpen() || away > 30000) { self.restart(); }
    });
    window.addEventListener("online", function () { self.restart(); });
    window.setInterval(function () {
      var now = Date.now(), gap = now - self.lastTick;
      self.lastTick = now;
      if (gap > 5000 && !document.hidden) { self.restart(); }   // woke from sleep
    }, 1000);
  }

  LiveLink.prototype.isOpen = function () {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  };

  LiveLink.prototype.connect = function () {
    var self = this;
    window.clearTimeout(this.timer);
    this.timer = null;
    var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/live" + this.query);
    this.ws = ws;
    ws.onmessage = function (message) {
      if (ws !== self.ws) { return; }
      var change;
      try { change = JSON.parse(message.data); } catch (e) { return; }
      if (change.kind === "snapshot") {
        self.retryMs = 1000;
        self.handlers.link(true);
        self.handlers.snapshot(change.data || {});
      } else {
        self.handlers.change(change);
      }
    };
    ws.onclose = function (event) {
      if (ws !== self.ws) { return; }
      self.ws = null;
      if (event.code === SIGNED_OUT) {
        location.href = "/login?next=" + encodeURIComponent(location.pathname);
        return;
      }
      self.handlers.link(false);
      self.timer = window.setTimeout(function () { self.connect(); }, self.retryMs);
      self.retryMs = Math.min(self.retryMs * 2, 10000);
    };
  };

  LiveLink.prototype.restart = function () {
    var old = this.ws;
    this.ws = null;
    if (old !== null) {
      old.onclose = null;
      try { old.close(); } catch (e) { /* already closed */ }
    }
    this.retryMs = 1000;
    this.connect();
  };

  // The server's clock, from <body data-now>: time in state and waits count from the server's moments.
  var serverNow = Date.parse(document.body.getAttribute("data-now") || "");
  var skew = isNaN(serverNow) ? 0 : serverNow - Date.now();

  function secondsSince(iso) {
    var at = Date.parse(iso || "");
    return isNaN(at) ? 0 : Math.max(0, Math.floor((Date.now() + skew - at) / 1000));
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function clock(seconds) {
    var sign = seconds < 0 ? "-" : "";
    seconds = Math.abs(Math.floor(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    return sign + (h ? h + ":" + pad(m) : pad(m)) + ":" + pad(s);
  }

  function level(thresholds, kind, seconds) {
    var t = thresholds[kind];
    if (!t) { return "ok"; }
    return seconds >= t[1] ? "bad" : seconds >= t[0] ? "warn" : "ok";
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  // An agent's state cell, with the "phone offline" tag beside the state when there is one.
  function stateCell(className, stateText, offlineText) {
    var cell = el("td", className, stateText);
    if (offlineText) {
      cell.appendChild(document.createTextNode(" "));
      cell.appendChild(el("span", "tag phone-offline", offlineText));
    }
    return cell;
  }

  function readJson(node, name) {
    try { return JSON.parse(node.getAttribute(name) || "{}"); } catch (e) { return {}; }
  }

  window.Live = {LiveLink: LiveLink, secondsSince: secondsSince, clock: clock, level: level, el: el,
                 stateCell: stateCell, readJson: readJson, now: function () { return Date.now() + skew; }};
})();
