// The agent page: state buttons (CSRF header from the page), screen pops over the websocket.
const csrf = document.querySelector('meta[name=csrf-token]').content;
const agent = document.querySelector('meta[name=agent-id]').content;
for (const b of document.querySelectorAll('button[data-action]')) {
  b.onclick = async () => {
    const body = b.dataset.action === 'pause' ? {reason: document.getElementById('reason').value} : {};
    const r = await fetch(`/api/agents/${agent}/${b.dataset.action}`, {method: 'POST',
      headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf}, body: JSON.stringify(body)});
    document.getElementById('state').textContent = r.ok ? b.textContent : (await r.json()).error;
  };
}
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws/live');
ws.onmessage = (m) => {
  const c = JSON.parse(m.data);
  if (c.kind === 'agent' && c.id === agent && c.data) document.getElementById('state').textContent = c.data.state;
  if (c.kind === 'screen_pop' && c.id === agent) document.getElementById('pop').textContent = JSON.stringify(c.data, null, 1);
};
ws.onclose = (e) => { if (e.code === 4001) location.href = '/login?next=/agent'; };
