// The wallboard: queues, callers waiting and agents, live over the socket (live.js); waits and
// times in state count every second and are coloured by the settings' thresholds; work-order
// alerts are grouped by their cause (an outage, or a kind of alert on one category and unit).
(function () {
  "use strict";
  var L = window.Live, el = L.el;
  var wall = document.getElementById("wall");
  if (!wall) { return; }
  var words = L.readJson(wall, "data-words"), thresholds = L.readJson(wall, "data-thresholds");
  var said = L.readJson(wall, "data-said");
  var queues = {}, agents = {}, calls = {}, alertGroups = {};

  function word(kind, key) { return (words[kind] && words[kind][key]) || key || ""; }

  function waitingCalls() {
    return Object.keys(calls).filter(function (id) {
      return calls[id] && (calls[id].state === "waiting" || calls[id].state === "callback");
    }).map(function (id) { return {id: id, data: calls[id], wait: L.secondsSince(calls[id].since)}; })
      .sort(function (a, b) { return b.wait - a.wait; });
  }

  function tile(name) {
    var found = document.getElementById("queue-" + name);
    if (found) { return found; }
    var article = el("article", "tile");
    article.id = "queue-" + name;
    article.appendChild(el("h3", "", name));
    var line = el("div", "", "");
    line.appendChild(el("b", "waiting", "0"));
    article.appendChild(line);
    var facts = el("dl", "");
    ["longest clock", "callbacks", "by-state"].forEach(function (cls) {
      facts.appendChild(el("dt", "", ""));
      facts.appendChild(el("dd", cls, "—"));
    });
    article.appendChild(facts);
    document.getElementById("queues").appendChild(article);
    return article;
  }

  function showQueues() {
    var waiting = waitingCalls();
    Object.keys(queues).forEach(function (name) {
      var q = queues[name] || {}, box = tile(name);
      var mine = waiting.filter(function (c) { return c.data.queue === name && c.data.state === "waiting"; });
      var longest = mine.length ? mine[0].wait : 0;
      box.querySelector(".waiting").textContent = String(q.waiting || 0);
      box.querySelector(".longest").textContent = L.clock(q.waiting ? Math.max(longest, q.longest_wait_s || 0) : 0);
      box.querySelector(".callbacks").textContent = String(q.callbacks || 0);
      var counts = {};
      Object.keys(agents).forEach(function (id) {
        var a = agents[id];
        if (a && (a.queues || []).indexOf(name) >= 0) { counts[a.state] = (counts[a.state] || 0) + 1; }
      });
      var parts = Object.keys(counts).sort().map(function (s) { return word("states", s) + " " + counts[s]; });
      box.querySelector(".by-state").textContent = parts.length ? parts.join(" · ") : "—";
      box.className = "tile level-" + L.level(thresholds, "wait", q.waiting ? longest : 0);
    });
  }

  function showWaiting() {
    var body = document.querySelector("#waiting-callers tbody");
    body.replaceChildren();
    waitingCalls().forEach(function (c) {
      var row = el("tr", "level-" + L.level(thresholds, "wait", c.wait));
      row.id = "call-" + c.id;
      row.appendChild(el("td", "", c.data.queue || ""));
      var wait = el("td", "clock", L.clock(c.wait));
      wait.setAttribute("data-since", c.data.since || "");
      row.appendChild(wait);
      row.appendChild(el("td", "", c.data.priority === undefined || c.data.priority === null ? "—" : c.data.priority));
      row.appendChild(el("td", "", word("calls", c.data.state)));
      body.appendChild(row);
    });
  }

  function agentLevel(a) {
    return L.level(thresholds, a.state, L.secondsSince(a.since));
  }

  function showAgents() {
    var body = document.querySelector("#agents tbody");
    body.replaceChildren();
    Object.keys(agents).sort().forEach(function (id) {
      var a = agents[id];
      if (!a) { return; }
      var row = el("tr", "level-" + agentLevel(a));
      row.id = "agent-" + id;
      row.appendChild(el("td", "", id));
      row.appendChild(L.stateCell("", word("states", a.state), a.phone_reachable === false && word("phone", "offline")));
      row.appendChild(el("td", "", a.state === "paused" && a.reason ? word("reasons", a.reason) : ""));
      var since = el("td", "clock", L.clock(L.secondsSince(a.since)));
      since.setAttribute("data-since", a.since || "");
      row.appendChild(since);
      body.appendChild(row);
    });
  }

  function tick() {
    document.querySelectorAll("#waiting-callers td[data-since], #agents td[data-since]").forEach(function (cell) {
      cell.textContent = L.clock(L.secondsSince(cell.getAttribute("data-since")));
    });
    document.querySelectorAll("#agents tbody tr").forEach(function (row) {
      var a = agents[row.id.replace(/^agent-/, "")];
      if (a) { row.className = "level-" + agentLevel(a); }
    });
    document.querySelectorAll("#waiting-callers tbody tr").forEach(function (row) {
      var c = calls[row.id.replace(/^call-/, "")];
      if (c) { row.className = "level-" + L.level(thresholds, "wait", L.secondsSince(c.since)); }
    });
    showQueues();
  }

  function alert(data) {
    var key = data.outage_id ? "outage-" + data.outage_id : [data.kind, data.category, data.unit].join("|");
    var group = alertGroups[key];
    if (!group) {
      group = alertGroups[key] = {orders: {}, item: el("li", "alert")};
      var list = document.getElementById("alerts");
      var none = document.getElementById("no-alerts");
      if (none) { none.remove(); }
      list.insertBefore(group.item, list.firstChild);
    }
    group.orders[data.order_id] = true;
    var count = Object.keys(group.orders).length;
    group.item.replaceChildren(
      el("strong", "", data.outage_id ? said.outage + " #" + data.outage_id : word("alerts", data.kind)),
      el("span", "", word("categories", data.category)), el("span", "", data.unit || ""),
      el("span", "tag", count + " " + said.orders), el("span", "muted", data.reason || ""));
    group.item.className = "alert level-" + (data.kind === "warning" ? "warn" : "bad");
  }

  var link = new L.LiveLink({
    link: function (up) { document.getElementById("link").hidden = up; },
    snapshot: function (data) {
      queues = data.queues || {};
      agents = data.agents || {};
      calls = data.calls || {};
      showQueues(); showWaiting(); showAgents();
    },
    change: function (change) {
      var table = {queue: queues, agent: agents, call: calls}[change.kind];
      if (table) {
        if (change.data) { table[change.id] = change.data; } else { delete table[change.id]; }
        if (change.kind === "agent") { showAgents(); }
        if (change.kind === "call") { showWaiting(); }
        showQueues();
      } else if (change.kind === "alert" && change.data) {
        alert(change.data);
      }
    }
  });
  window.setInterval(tick, 1000);
  link.connect();
})();
