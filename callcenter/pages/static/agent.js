// The agent's desk: the agent's state and its time, wrap-up with its countdown, the screen pop
// as a card, the actions on the call, all through the agent API; live over the socket (live.js).
(function () {
  "use strict";
  var L = window.Live, el = L.el;
  var desk = document.getElementById("desk");
  if (!desk) { return; }
  var agentId = desk.getAttribute("data-agent");
  var wrapupS = parseFloat(desk.getAttribute("data-wrapup")) || 0;
  var words = L.readJson(desk, "data-words"), said = L.readJson(desk, "data-said");
  var tz = desk.getAttribute("data-tz") || undefined, lang = document.documentElement.lang || "zh-CN";
  var csrf = L.readJson(document.body, "hx-headers")["X-CSRF-Token"] || "";
  var me = L.readJson(desk, "data-me"), agents = {}, shownPop = null, extendedS = 0, popWhileHidden = false;
  var title = document.title;

  function word(kind, key) { return (words[kind] && words[kind][key]) || key || ""; }

  function when(iso) {
    var at = new Date(iso);
    if (isNaN(at.getTime())) { return iso || "—"; }
    return at.toLocaleString(lang, {timeZone: tz, month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit"});
  }

  // ------------------------------------------------------------ the agent's state

  function showState() {
    var state = (me && me.state) || "logged_out";
    var badge = document.getElementById("state");
    badge.textContent = word("states", state);
    badge.className = "agent-state state-" + state;
    badge.setAttribute("data-state", state);
    document.getElementById("reason").textContent = state === "paused" && me.reason ? word("reasons", me.reason) : "";
    document.getElementById("wrapup").hidden = state !== "wrap_up";
    tick();
  }

  function tick() {
    var inState = L.secondsSince(me && me.since);
    document.getElementById("in-state").textContent = me && me.since ? L.clock(inState) : "—";
    if (me && me.state === "wrap_up") {
      document.getElementById("wrapup-left").textContent = L.clock(Math.max(0, wrapupS + extendedS - inState));
    }
  }

  function setMe(data) {
    var before = me && me.state;
    me = data || {state: "logged_out"};
    if (me.state !== "wrap_up") { extendedS = 0; }
    showState();
    if (before !== me.state && (me.state === "wrap_up" || me.state === "available")) {
      var today = document.getElementById("today");
      if (today && window.htmx) { window.htmx.trigger(today, "refresh"); }
    }
  }

  function showColleagues() {
    var select = document.getElementById("to-agent"), chosen = select.value;
    var free = Object.keys(agents).filter(function (id) {
      return id !== agentId && agents[id] && agents[id].state === "available";
    }).sort();
    select.replaceChildren();
    if (!free.length) { select.appendChild(el("option", "", said.nobody)).value = ""; }
    free.forEach(function (id) { var o = el("option", "", id); o.value = id; select.appendChild(o); });
    if (free.indexOf(chosen) >= 0) { select.value = chosen; }
  }

  // ------------------------------------------------------------ the screen pop

  function fact(list, label, value) {
    if (value === undefined || value === null || value === "") { return; }
    list.appendChild(el("dt", "", label));
    list.appendChild(el("dd", "", value));
  }

  function showPop(pop, restored) {
    shownPop = pop;
    var box = document.getElementById("pop");
    box.replaceChildren();
    var head = el("div", "pop-head");
    head.appendChild(el("strong", "caller", pop.caller || said.unknown));
    var name = pop.customer_name || pop.name;
    if (name) { head.appendChild(el("span", "name", name)); }
    box.appendChild(head);
    var facts = el("dl", "facts");
    fact(facts, said.account, pop.account);
    fact(facts, said.address, pop.address);
    fact(facts, said.queue, pop.queue);
    fact(facts, said.category, pop.category ? word("categories", pop.category) : "");
    box.appendChild(facts);
    var outage = pop.outage;
    if (outage && typeof outage === "object") {
      var o = el("div", "outage");
      o.appendChild(el("strong", "", said.outage + (outage.outage_id ? " #" + outage.outage_id : "")));
      var text = outage.text || "";
      if (text) { o.appendChild(el("span", "", " " + text)); }
      if (outage.ends_at) { o.appendChild(el("span", "muted", " · " + said.until + " " + when(outage.ends_at))); }
      if (pop.area) { o.appendChild(el("span", "muted", " · " + pop.area)); }
      box.appendChild(o);
    }
    var open = (pop.open_orders || []).slice().sort(function (a, b) {
      return String(a.created_at || "").localeCompare(String(b.created_at || ""));
    });
    box.appendChild(el("h3", "", said.open_orders + " (" + (pop.open_orders_total || open.length) + ")"));
    if (!open.length) { box.appendChild(el("p", "muted", said.no_open_orders)); }
    var list = el("ul", "pop-orders");
    open.forEach(function (order, i) {
      var item = el("li", i === 0 ? "oldest" : "");
      var link = el("a", "", "#" + order.order_id);
      link.href = "/orders/" + encodeURIComponent(order.order_id);
      item.appendChild(link);
      item.appendChild(el("span", "", " " + word("categories", order.category)));
      item.appendChild(el("span", "state", word("orders", order.state)));
      item.appendChild(el("span", "muted", when(order.created_at)));
      if (order.owner) { item.appendChild(el("span", "muted", said.owner + " " + order.owner)); }
      if (i === 0 && open.length > 1) { item.appendChild(el("span", "tag", said.oldest)); }
      list.appendChild(item);
    });
    box.appendChild(list);
    var last = pop.last_calls || [];
    box.appendChild(el("h3", "", said.last_calls));
    if (!last.length) { box.appendChild(el("p", "muted", said.first_call)); }
    var calls = el("ul", "pop-calls");
    last.forEach(function (call) {
      var item = el("li", "");
      item.appendChild(el("span", "", when(call.arrived_at)));
      item.appendChild(el("span", "", word("categories", call.category) || "—"));
      item.appendChild(el("span", "", word("dispositions", call.disposition) || "—"));
      if (call.agent_id) { item.appendChild(el("span", "muted", said.agent + " " + call.agent_id)); }
      calls.appendChild(item);
    });
    box.appendChild(calls);
    showOrderForm(pop, restored);
    if (document.hidden) {
      popWhileHidden = true;
      document.title = "【" + said.ringing + "】" + title;
    }
  }

  // The pop of the call the agent has now (from the snapshot when the page was away).
  function popFits(pop) {
    if (!pop) { return false; }
    if (shownPop && shownPop.call_id === pop.call_id) { return false; }
    if (me && me.call_id) { return me.call_id === pop.call_id; }
    return me && (me.state === "ringing" || me.state === "on_call" || me.state === "wrap_up");
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && popWhileHidden) { popWhileHidden = false; document.title = title; }
  });


  // ------------------------------------------------------------ the work order, while the call lasts
  // Filled from the call (the menu's category, the customer's address, the category's urgency and
  // unit); saved, the order service drafts it by its own rules and answers with the unit and the
  // deadlines, which the dispatch step shows. One click attaches the call to the caller's open
  // order or to the outage's order instead.

  var categories = L.readJson(desk, "data-categories"), filing = null;
  var orderBox = document.getElementById("order"), orderForm = document.getElementById("order-form");
  var orderSaid = document.getElementById("order-said"), dispatchBox = document.getElementById("dispatch");

  function showRules() {
    var key = document.getElementById("order-category").value, c = categories[key] || {};
    document.getElementById("order-urgency").textContent = (said.urgency && said.urgency[c.urgency]) || c.urgency || "—";
    document.getElementById("order-unit").textContent = c.unit || "—";
    var subs = c.subcategories || {}, select = document.getElementById("order-subcategory");
    select.replaceChildren();
    Object.keys(subs).forEach(function (k) { var o = el("option", "", subs[k]); o.value = k; select.appendChild(o); });
    document.getElementById("order-sub-label").hidden = !Object.keys(subs).length;
  }

  function tell(text, ok) { orderSaid.textContent = text; orderSaid.className = "said " + (ok ? "ok" : "error"); }

  function callApi(method, path, body) {
    return fetch(path, {method: method, credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (!response.ok) { throw new Error(answer.error || String(response.status)); }
        return answer;
      });
    });
  }

  function attachButton(label, body) {
    var button = el("button", "", label);
    button.type = "button";
    button.addEventListener("click", function () {
      if (!filing) { return; }
      button.disabled = true;
      callApi("POST", "/api/calls/" + encodeURIComponent(filing.call_id) + "/attach", body)
        .then(filed, function (e) { tell(said.refused + ": " + (e.message || said.unreachable), false); })
        .then(function () { button.disabled = false; });
    });
    return button;
  }

  function showOrderForm(pop, restored) {
    if (!pop.call_id || (filing && filing.call_id === pop.call_id)) { return; }
    filing = {call_id: pop.call_id, order: null};
    orderBox.hidden = false;
    orderForm.hidden = false;
    dispatchBox.hidden = true;
    orderSaid.textContent = "";
    document.getElementById("order-call").textContent = pop.caller || "";
    var category = document.getElementById("order-category");
    category.value = pop.category && categories[pop.category] ? pop.category : (categories.other ? "other" : category.value);
    showRules();
    document.getElementById("order-address").value = pop.address || "";
    document.getElementById("order-description").value = "";
    document.getElementById("order-save").textContent = said.open;
    var attach = document.getElementById("order-attach");
    attach.replaceChildren();
    var open = (pop.open_orders || []).slice().sort(function (a, b) {
      return String(a.created_at || "").localeCompare(String(b.created_at || ""));
    });
    open.forEach(function (order) {
      attach.appendChild(attachButton(said.attach_order + " #" + order.order_id + " " + word("categories", order.category),
                                      {order_id: order.order_id}));
    });
    if (pop.outage && pop.outage.outage_id) {
      attach.appendChild(attachButton(said.attach_outage + " #" + pop.outage.outage_id, {outage_id: pop.outage.outage_id}));
    }
    // Back after a reload or a lost connection (the pop came with a snapshot): the call may be
    // filed already. A pop that has just rung is not.
    if (!restored) { return; }
    var callId = pop.call_id;
    callApi("GET", "/api/calls/" + encodeURIComponent(callId) + "/order").then(function (answer) {
      if (answer.order && filing && filing.call_id === callId) { filed(answer); }
    }, function () { /* not filed yet */ });
  }

  function filed(answer) {
    var order = answer.order;
    filing.order = order;
    if (answer.attached) {
      orderForm.hidden = true;
      tell(said.attached + " #" + order.id, true);
    } else {
      tell(said.saved + " #" + order.id, true);
      document.getElementById("order-category").value = order.category;
      showRules();
      if (order.subcategory) { document.getElementById("order-subcategory").value = order.subcategory; }
      document.getElementById("order-save").textContent = said.update;
    }
    showDispatch(order);
  }

  function showDispatch(order) {
    dispatchBox.hidden = false;
    dispatchBox.setAttribute("data-state", order.state);
    document.getElementById("dispatch-unit").textContent = order.unit;
    document.getElementById("dispatch-by").textContent = order.dispatch_by ? when(order.dispatch_by) : "—";
    document.getElementById("arrive-by").textContent = order.arrive_by ? when(order.arrive_by) : "—";
    var button = document.getElementById("dispatch-button");
    var mine = order.agent_id === agentId;
    button.hidden = order.state !== "accepted" || !order.dispatch_by || !mine;
    if (order.state !== "accepted") {
      tell(said.dispatched + " " + order.unit + " · #" + order.id + " " + word("orders", order.state), true);
    } else if (!order.dispatch_by) {
      tell(said.saved + " #" + order.id + " · " + said.no_field_work, true);
    } else if (!mine) {
      tell(said.attached + " #" + order.id + " · " + said.not_yours, true);
    }
  }

  document.getElementById("order-category").addEventListener("change", showRules);

  orderForm.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!filing) { return; }
    var sub = document.getElementById("order-sub-label").hidden ? null : document.getElementById("order-subcategory").value;
    var body = {category: document.getElementById("order-category").value, subcategory: sub,
                description: document.getElementById("order-description").value};
    var address = document.getElementById("order-address").value.trim();
    if (address) { body.address = address; }
    var save = document.getElementById("order-save");
    save.disabled = true;
    callApi("POST", "/api/calls/" + encodeURIComponent(filing.call_id) + "/order", body)
      .then(filed, function (e) { tell(said.refused + ": " + (e.message || said.unreachable), false); })
      .then(function () { save.disabled = false; });
  });

  document.getElementById("dispatch-button").addEventListener("click", function () {
    var button = this;
    if (!filing || !filing.order) { return; }
    button.disabled = true;
    callApi("POST", "/api/orders/" + encodeURIComponent(filing.order.id) + "/events", {event: "dispatch"})
      .then(function (answer) { filing.order = answer.order; showDispatch(answer.order); },
            function (e) { tell(said.refused + ": " + (e.message || said.unreachable), false); })
      .then(function () { button.disabled = false; });
  });

  // ------------------------------------------------------------ actions, through the agent API

  function bodyFor(button) {
    var act = button.getAttribute("data-act");
    if (act === "pause") { return {reason: document.getElementById("pause-reason").value}; }
    if (act === "wrapup/extend") { return {seconds: parseFloat(button.getAttribute("data-seconds")) || 30}; }
    if (act === "consult") { return {agent: document.getElementById("to-agent").value}; }
    if (act === "transfer") {
      return button.getAttribute("data-to") === "queue" ? {queue: document.getElementById("to-queue").value}
        : {agent: document.getElementById("to-agent").value};
    }
    return {};
  }

  function act(button) {
    var action = button.getAttribute("data-act"), body = bodyFor(button);
    var out = document.getElementById("said");
    if ((action === "consult" || (action === "transfer" && body.agent !== undefined)) && !body.agent) {
      out.textContent = said.nobody;
      out.className = "said error";
      return;
    }
    button.disabled = true;
    fetch("/api/agents/" + encodeURIComponent(agentId) + "/" + action, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf}, body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (response.ok) {
          out.textContent = said.done + ": " + button.textContent.replace(/Alt\+\d/, "").trim();
          out.className = "said ok";
          if (action === "wrapup/extend") { extendedS += body.seconds; tick(); }
        } else {
          out.textContent = said.refused + ": " + (answer.error || response.status);
          out.className = "said error";
        }
      });
    }).catch(function () {
      out.textContent = said.unreachable;
      out.className = "said error";
    }).then(function () { button.disabled = false; });
  }

  document.querySelectorAll("button[data-act]").forEach(function (button) {
    button.addEventListener("click", function () { act(button); });
  });

  // Alt+1 ready, Alt+2 pause, Alt+3 extend wrap-up, Alt+4 pause the recording, Alt+5 transfer to the queue.
  var KEYS = {"1": "ready", "2": "pause", "3": "wrapup/extend", "4": "recording/pause", "5": "transfer"};
  document.addEventListener("keydown", function (event) {
    if (!event.altKey || event.ctrlKey || event.metaKey || !KEYS[event.key]) { return; }
    var button = document.querySelector('button[data-act="' + KEYS[event.key] + '"]');
    if (button) { event.preventDefault(); act(button); }
  });

  // ------------------------------------------------------------ live

  var link = new L.LiveLink({
    link: function (up) { document.getElementById("link").hidden = up; desk.classList.toggle("offline", !up); },
    snapshot: function (data) {
      agents = data.agents || {};
      setMe(agents[agentId]);
      showColleagues();
      if (popFits(data.screen_pop)) { showPop(data.screen_pop, true); }
    },
    change: function (change) {
      if (change.kind === "agent") {
        if (change.data) { agents[change.id] = change.data; } else { delete agents[change.id]; }
        if (change.id === agentId) { setMe(change.data); }
        showColleagues();
      } else if (change.kind === "screen_pop" && change.id === agentId && change.data) {
        showPop(change.data, false);
      }
    }
  }, "?view=desk");
  showState();
  window.setInterval(tick, 1000);
  link.connect();
})();
