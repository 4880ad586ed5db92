// The wallboard: figures from /api/live/stats, refreshed on every live change.
async function refresh() {
  const r = await fetch('/api/live/stats');
  if (!r.ok) return;
  const s = await r.json();
  document.getElementById('waiting').textContent = s.waiting;
  document.getElementById('longest').textContent = Math.round(s.longest_wait_s);
  document.getElementById('calls').textContent = s.today.calls;
  document.getElementById('sla').textContent = s.today.answered_within_rings_pct === null ? '–' : s.today.answered_within_rings_pct + '%';
  document.getElementById('abandoned').textContent = s.today.abandoned;
  document.getElementById('asa').textContent = s.today.asa_s === null ? '–' : s.today.asa_s;
}
async function agents(snapshot) {
  const body = document.getElementById('agents');
  body.replaceChildren();
  for (const [id, a] of Object.entries(snapshot.agents || {})) {
    const row = body.insertRow();
    for (const v of [id, a.state, a.reason || '', a.call_id || '']) row.insertCell().textContent = v;
  }
}
function connect() {
  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws/live');
  ws.onmessage = (m) => { const c = JSON.parse(m.data); if (c.kind === 'snapshot') agents(c.data); refresh(); };
  // 4001: signed out (log-out, password change, deactivated): sign in again; else reconnect.
  ws.onclose = (e) => { if (e.code === 4001) location.href = '/login?next=/wallboard'; else setTimeout(connect, 2000); };
}
refresh(); connect(); setInterval(refresh, 5000);
