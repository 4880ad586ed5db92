// The duty manager's view: the agents' grid, live over the socket (live.js), with listen /
// whisper / barge on an agent's call (the engine rings the supervisor's own phone), force pause
// and log out, all through the agent API; alerts for long pauses and long waits, by the settings'
// thresholds ("bad" level), counted again every second.
(function () {
  "use strict";
  var L = window.Live, el = L.el;
  var duty = document.getElementById("duty");
  if (!duty) { return; }
  var words = L.readJson(duty, "data-words"), thresholds = L.readJson(duty, "data-thresholds");
  var said = L.readJson(duty, "data-said");
  var csrf = L.readJson(document.body, "hx-headers")["X-CSRF-Token"] || "";
  var agents = {}, calls = {};

  function word(kind, key) { return (words[kind] && words[kind][key]) || key || ""; }

  function post(path, body, label) {
    var out = document.getElementById("said");
    return fetch(path, {method: "POST", credentials: "same-origin",
                        headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
                        body: JSON.stringify(body)})
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (answer) {
          out.textContent = response.ok ? said.done + ": " + label : said.refused + ": " + (answer.error || response.status);
          out.className = "said " + (response.ok ? "ok" : "error");
        });
      }).catch(function () { out.textContent = said.unreachable; out.className = "said error"; });
  }

  function button(text, onClick, enabled) {
    var b = el("button", "small", text);
    b.type = "button";
    b.disabled = !enabled;
    b.addEventListener("click", onClick);
    return b;
  }

  function actions(id, a) {
    var cell = el("td", "actions");
    var onCall = a.state === "on_call";
    var base = "/api/agents/" + encodeURIComponent(id);
    ["listen", "whisper", "barge"].forEach(function (mode) {
      cell.appendChild(button(said[mode], function () {
        post(base + "/spy", {mode: mode}, said[mode] + " " + id);
      }, onCall));
    });
    cell.appendChild(button(said.pause, function () {
      var reason = document.getElementById("force-reason").value;
      post(base + "/pause", {reason: reason}, said.pause + " " + id);
    }, a.state === "available" || a.state === "wrap_up" || a.state === "paused"));
    cell.appendChild(button(said.logout, function () { post(base + "/logout", {}, said.logout + " " + id); }, true));
    return cell;
  }

  function showGrid() {
    var body = document.querySelector("#grid tbody");
    body.replaceChildren();
    Object.keys(agents).sort().forEach(function (id) {
      var a = agents[id];
      if (!a) { return; }
      var row = el("tr", "level-" + L.level(thresholds, a.state, L.secondsSince(a.since)));
      row.id = "agent-" + id;
      row.appendChild(el("td", "", id));
      row.appendChild(L.stateCell("state-cell", word("states", a.state), a.phone_reachable === false && word("phone", "offline")));
      row.appendChild(el("td", "", a.state === "paused" && a.reason ? word("reasons", a.reason) : ""));
      var since = el("td", "clock", L.clock(L.secondsSince(a.since)));
      since.setAttribute("data-since", a.since || "");
      row.appendChild(since);
      row.appendChild(el("td", "", (a.queues || []).join(", ")));
      row.appendChild(actions(id, a));
      body.appendChild(row);
    });
  }

  function showAlerts() {
    var list = document.getElementById("duty-alerts"), items = [];
    Object.keys(agents).sort().forEach(function (id) {
      var a = agents[id], s = L.secondsSince(a && a.since);
      if (a && a.state === "paused" && L.level(thresholds, "paused", s) === "bad") {
        items.push([said.long_pause, id + " · " + word("reasons", a.reason), s]);
      }
    });
    Object.keys(calls).forEach(function (id) {
      var c = calls[id], s = L.secondsSince(c && c.since);
      if (c && c.state === "waiting" && L.level(thresholds, "wait", s) === "bad") {
        items.push([said.long_wait, c.queue || "", s]);
      }
    });
    list.replaceChildren();
    if (!items.length) { list.appendChild(el("li", "muted", said.no_alerts)); }
    items.forEach(function (item) {
      var li = el("li", "alert level-bad");
      li.appendChild(el("strong", "", item[0]));
      li.appendChild(el("span", "", item[1]));
      li.appendChild(el("span", "clock", L.clock(item[2])));
      list.appendChild(li);
    });
  }

  function tick() {
    document.querySelectorAll("#grid td[data-since]").forEach(function (cell) {
      cell.textContent = L.clock(L.secondsSince(cell.getAttribute("data-since")));
    });
    document.querySelectorAll("#grid tbody tr").forEach(function (row) {
      var a = agents[row.id.replace(/^agent-/, "")];
      if (a) { row.className = "level-" + L.level(thresholds, a.state, L.secondsSince(a.since)); }
    });
    showAlerts();
  }

  var link = new L.LiveLink({
    link: function (up) { document.getElementById("link").hidden = up; },
    snapshot: function (data) { agents = data.agents || {}; calls = data.calls || {}; showGrid(); showAlerts(); },
    change: function (change) {
      if (change.kind === "agent") {
        if (change.data) { agents[change.id] = change.data; } else { delete agents[change.id]; }
        showGrid();
      } else if (change.kind === "call") {
        if (change.data) { calls[change.id] = change.data; } else { delete calls[change.id]; }
      }
      showAlerts();
    }
  });
  window.setInterval(tick, 1000);
  link.connect();
})();
