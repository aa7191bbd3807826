/**
 * The dashboard page: plain HTML, CSS and one script, no build step and no framework. The
 * script renders the `/api/status` document, follows `/api/events` (EventSource reconnects by
 * itself when the server restarts) and draws the charts as hand-written SVG. Every value from the
 * pool is set with textContent, never as HTML.
 */

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>worktree pool</title>
<style>
  :root { --ok:#1a7f37; --warn:#b35900; --err:#c62828; --mute:#667; --line:#d8dbe2; --bg:#f6f7f9; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: #1d2330; }
  header { display: flex; gap: 16px; align-items: baseline; padding: 10px 16px; background: #1d2330; color: #fff; }
  header h1 { font-size: 16px; margin: 0; }
  header .meta { color: #b8bfcc; font-size: 12px; }
  #conn.live { color: #7ee2a0; } #conn.down { color: #ffb4a8; }
  .badge { display: inline-block; padding: 1px 8px; border-radius: 9px; font-weight: 600; color: #fff; }
  .lvl-ok { background: var(--ok); } .lvl-warning { background: var(--warn); } .lvl-error { background: var(--err); }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 12px; padding: 12px 16px; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; min-width: 0; }
  section.wide { grid-column: 1 / -1; }
  h2 { font-size: 13px; margin: 0 0 8px; text-transform: uppercase; letter-spacing: .04em; color: var(--mute); }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid #eef0f3; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 260px; }
  th { font-weight: 600; color: var(--mute); font-size: 12px; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  tr.log td { color: #445; font: 11px/1.3 ui-monospace, monospace; white-space: pre; background: #fafbfc; }
  .state-leased { color: #0b57d0; font-weight: 600; } .state-ready { color: var(--ok); } .state-broken { color: var(--err); font-weight: 600; }
  .stale { color: var(--warn); font-weight: 600; } .expired { color: var(--err); font-weight: 600; }
  .empty { color: var(--mute); font-style: italic; }
  .gauge { margin: 6px 0 10px; }
  .gauge .label { display: flex; justify-content: space-between; font-size: 12px; }
  .gauge .bar { position: relative; height: 12px; background: #eef0f3; border-radius: 3px; overflow: hidden; }
  .gauge .fill { position: absolute; top: 0; bottom: 0; left: 0; background: var(--ok); }
  .gauge .fill.warning { background: var(--warn); } .gauge .fill.error { background: var(--err); }
  .gauge .mark { position: absolute; top: 0; bottom: 0; width: 2px; background: #1d2330; opacity: .5; }
  .alerts { list-style: none; margin: 0; padding: 0; }
  .alerts li { padding: 4px 8px; margin-bottom: 4px; border-left: 4px solid; background: #fff8f0; }
  .alerts li.warning { border-color: var(--warn); } .alerts li.error { border-color: var(--err); background: #fff0f0; }
  .charts { display: grid; grid-template-columns: repeat(3, 1fr); gap: 12px; }
  .chart svg { width: 100%; height: 90px; background: #fafbfc; border: 1px solid #eef0f3; }
  .chart .cap { font-size: 12px; color: var(--mute); display: flex; justify-content: space-between; }
  button { font: inherit; font-size: 12px; padding: 1px 8px; border: 1px solid #c5cad3; background: #fff; border-radius: 4px; cursor: pointer; }
  button:hover { background: #eef3ff; }
  .events td:first-child { color: var(--mute); } .events td:last-child { width: 100%; }
  .gauge .label span:first-child { white-space: nowrap; margin-right: 12px; }
  .state-lost { color: var(--mute); font-weight: 600; text-decoration: line-through; } .state-live { color: var(--ok); font-weight: 600; }
  .filter { margin-bottom: 6px; } .filter select { font: inherit; font-size: 12px; }
  tr.me td:first-child { font-weight: 700; }
  #toast { position: fixed; bottom: 12px; right: 12px; background: #1d2330; color: #fff; padding: 6px 10px; border-radius: 4px; display: none; max-width: 50%; }
</style>
</head>
<body>
<header>
  <h1>worktree pool</h1>
  <span id="level" class="badge lvl-ok">…</span>
  <span class="meta" id="summary"></span>
  <span class="meta" style="margin-left:auto">updated <span id="updated">never</span> · <span id="conn" class="down">connecting</span></span>
</header>
<main>
  <section class="wide" id="alerts-box"><h2>Alerts</h2><ul class="alerts" id="alerts"></ul></section>
  <section class="wide" id="fleet-box" hidden><h2>Fleet</h2>
    <div class="filter"><label for="host-filter">host</label> <select id="host-filter"><option value="">all hosts</option></select></div>
    <table id="hosts"><thead><tr><th>host</th><th>state</th><th>heartbeat</th><th>slots</th><th>leased</th><th>ready</th><th>waiting</th></tr></thead><tbody></tbody></table></section>
  <section class="wide"><h2>Slots</h2><div id="actions-bar"></div>
    <table id="slots"><thead></thead><tbody></tbody></table></section>
  <section><h2>Queue</h2><table id="queue"><thead></thead><tbody></tbody></table></section>
  <section><h2>Capacity</h2><div id="capacity"></div></section>
  <section class="wide"><h2>Last hour</h2><div class="charts">
    <div class="chart" id="chart-pool"></div><div class="chart" id="chart-queue"></div><div class="chart" id="chart-band"></div></div></section>
  <section><h2>Metrics</h2><table id="metrics"><tbody></tbody></table></section>
  <section><h2>Integration queue</h2><div id="integration"></div></section>
  <section><h2>Leaks</h2><div id="leaks"></div></section>
  <section class="wide"><h2>Last events</h2><table class="events" id="events"><tbody></tbody></table></section>
</main>
<div id="toast"></div>
<script src="/app.js"></script>
</body>
</html>
`;

export const APP_JS = String.raw`'use strict';
const $ = (id) => document.getElementById(id);
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v; else if (k.startsWith('on')) el.addEventListener(k.slice(2), v); else el.setAttribute(k, v);
  }
  for (const c of kids.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}
const NS = 'http://www.w3.org/2000/svg';
const svg = (tag, attrs) => { const el = document.createElementNS(NS, tag); for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v); return el; };
function dur(ms) {
  if (ms === null || ms === undefined || !isFinite(ms)) return '-';
  const neg = ms < 0; ms = Math.abs(ms);
  const s = Math.round(ms / 1000), m = Math.floor(s / 60), hh = Math.floor(m / 60);
  const t = hh ? hh + 'h' + String(m % 60).padStart(2, '0') + 'm' : m ? m + 'm' + String(s % 60).padStart(2, '0') + 's' : s + 's';
  return neg ? '-' + t : t;
}
function bytes(n) { return n >= 1e9 ? (n / 1e9).toFixed(2) + ' GB' : n >= 1e6 ? (n / 1e6).toFixed(1) + ' MB' : Math.round(n / 1e3) + ' kB'; }
// key: the token, learnt from the authenticated event stream; actions send it in a header.
let doc = null, samples = [], canAct = false, skew = 0, key = null, locked = false;
// The host filter (fleet only): '' shows every host; kept in the address as #host=<id>.
let hostFilter = decodeURIComponent((location.hash.match(/^#host=(.*)$/) || [])[1] || '');
const fleetOf = (d) => (d && d.fleet && d.fleet.hosts ? d.fleet : null);
const shown = (host) => !hostFilter || host === hostFilter;
function head(table, cols) { table.tHead.replaceChildren(h('tr', {}, cols.map((c) => h('th', {}, c)))); }
const now = () => Date.now() - skew;

function fill(tbody, rows, cols, empty) {
  tbody.replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', { class: 'empty', colspan: cols }, empty))]));
}
function gauge(label, value, max, text, marks, level, id) {
  const pct = max > 0 ? Math.min(100, (value / max) * 100) : 0;
  const bar = h('div', { class: 'bar' }, h('div', { class: 'fill ' + (level || ''), style: 'width:' + pct + '%' }));
  for (const [at, title] of marks || []) if (max > 0 && at <= max) bar.append(h('div', { class: 'mark', title, style: 'left:' + Math.min(99.5, (at / max) * 100) + '%' }));
  return h('div', { class: 'gauge', id, 'data-value': value, 'data-max': max }, h('div', { class: 'label' }, h('span', {}, label), h('span', {}, text)), bar);
}
const lvl = (v, warn, err) => (v >= err ? 'error' : v >= warn ? 'warning' : '');

async function act(name, body) {
  const r = await fetch('/api/actions/' + name, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + key }, body: JSON.stringify(body || {}), credentials: 'same-origin' });
  const j = await r.json().catch(() => ({}));
  toast(r.ok ? name + ': done' + (name === 'cleanup-dry-run' ? ' — ' + (j.result.actions || []).length + ' planned action(s)' : '') : name + ' failed: ' + (j.error || r.status));
}
function toast(text) { const t = $('toast'); t.textContent = text; t.style.display = 'block'; clearTimeout(toast.t); toast.t = setTimeout(() => (t.style.display = 'none'), 5000); }

function render() {
  if (!doc) return;
  const m = doc.monitor, p = doc.pool.pool, t = doc.thresholds || {};
  const level = $('level'); level.textContent = m.level.toUpperCase(); level.className = 'badge lvl-' + m.level;
  $('summary').textContent = p.size + ' slots · ' + p.leased + ' leased · ' + p.ready + ' ready · ' + p.broken + ' broken · ' + p.waiters + ' waiting';
  $('updated').textContent = new Date(doc.at).toLocaleTimeString();
  $('alerts').replaceChildren(...(m.alerts.length ? m.alerts.map((a) => h('li', { class: a.level }, h('b', {}, a.check + ': '), a.message)) : [h('li', { class: 'empty', style: 'border:0;background:none' }, 'no alerts')]));
  // Fleet (store.backend redis): every host, filterable; a one-host pool has no host column.
  const fl = fleetOf(doc);
  $('fleet-box').hidden = !fl && !(doc.fleet && doc.fleet.error);
  if (!fl && doc.fleet && doc.fleet.error) fill($('hosts').tBodies[0], [], 7, 'fleet unreadable: ' + doc.fleet.error);
  if (fl) {
    const live = fl.hosts.filter((x) => x.state === 'live').length;
    const all = fl.hosts.filter((x) => x.state === 'live').flatMap((x) => x.slots);
    $('summary').textContent = 'fleet: ' + fl.hosts.length + ' hosts (' + live + ' live) · ' + all.length + ' slots · ' + all.filter((y) => y.state === 'leased').length + ' leased · ' + fl.hosts.reduce((n, x) => n + x.queue.length, 0) + ' waiting — this host (' + fl.me + '): ' + $('summary').textContent;
    const sel = $('host-filter');
    const ids = fl.hosts.map((x) => x.id);
    if (hostFilter && !ids.includes(hostFilter)) ids.push(hostFilter);
    if ([...sel.options].slice(1).map((o) => o.value).join(' ') !== ids.join(' ')) {
      sel.replaceChildren(h('option', { value: '' }, 'all hosts'), ...ids.map((id) => h('option', { value: id }, id + (id === fl.me ? ' (this host)' : ''))));
    }
    sel.value = hostFilter;
    // The age when the document was built, counted on between documents.
    const ago = (x) => (x.heartbeatAgeMs === null ? null : x.heartbeatAgeMs + Math.max(0, now() - Date.parse(doc.at)));
    fill($('hosts').tBodies[0], fl.hosts.filter((x) => shown(x.id)).map((x) => h('tr', { 'data-host': x.id, 'data-state': x.state, class: x.id === fl.me ? 'me' : '' },
      h('td', {}, x.id + (x.id === fl.me ? ' (this host)' : '')), h('td', { class: 'state-' + x.state }, x.state + (x.state !== 'lost' ? '' : !x.lostAt ? ' · silent, not reclaimed yet' : x.reclaimed ? ' · reclaimed' : ' · reclaiming')),
      h('td', { class: 'num ' + (x.state === 'live' && x.heartbeatAgeMs > fl.hostTtl / 2 ? 'stale' : '') }, dur(ago(x))),
      h('td', { class: 'num' }, x.slots.length), h('td', { class: 'num' }, x.slots.filter((y) => y.state === 'leased').length),
      h('td', { class: 'num' }, x.slots.filter((y) => y.state === 'ready').length), h('td', { class: 'num' }, x.queue.length))), 7, 'no host of the fleet matches');
  }
  // Slots
  head($('slots'), [...(fl ? ['host'] : []), 'slot', 'state', 'agent', 'task', 'branch', 'held for', 'heartbeat', 'expires in', 'services', '']);
  const cols = fl ? 11 : 10;
  const rows = [];
  const local = new Map(doc.pool.slots.map((s) => [s.id, s]));
  // With a fleet: this host's slots in full (services, logs, actions), the others' from the fleet view.
  const listed = fl ? fl.hosts.filter((x) => shown(x.id)).flatMap((x) => x.slots.map((s) => ({ host: x.id, s: x.id === fl.me ? local.get(s.id) || s : s }))) : doc.pool.slots.map((s) => ({ host: null, s }));
  for (const { host, s } of listed) {
    const mine = !fl || host === fl.me;
    const l = s.lease;
    const hb = l ? now() - Date.parse(l.heartbeatAt) : null;
    const ttl = l ? Date.parse(l.expiresAt) - Date.parse(l.heartbeatAt) : 0;
    const left = l ? Date.parse(l.expiresAt) - now() : null;
    const pg = mine && m.postgres && m.postgres.slots && m.postgres.slots[s.id];
    const fds = mine && m.fds.holders.find((x) => x.slot === s.id);
    const services = [pg ? 'db ' + pg.database + ' (' + pg.connections + ')' : null, fds ? 'pid ' + fds.pid + ' ' + fds.open + ' fds' : null].filter(Boolean).join(' · ');
    const buttons = mine && canAct && l ? [h('button', { onclick: () => act('heartbeat', { slot: s.id }) }, 'heartbeat'), ' ', h('button', { onclick: () => confirm('Release ' + s.id + ' (uncommitted work goes to a rescue ref)?') && act('release', { slot: s.id }) }, 'release')] : [];
    rows.push(h('tr', { 'data-slot': s.id, 'data-state': s.state, 'data-host': host },
      ...(fl ? [h('td', {}, host)] : []),
      h('td', {}, h('b', {}, s.id)), h('td', { class: 'state-' + s.state }, s.state), h('td', {}, l ? l.agent : '-'), h('td', { title: l ? l.task : '' }, l ? l.task : '-'),
      h('td', { title: s.branch || s.path || '' }, s.branch || (s.error ? 'error: ' + s.error : '-')),
      h('td', { class: 'num' }, l ? dur(now() - Date.parse(l.acquiredAt)) : '-'),
      h('td', { class: 'num ' + (l && hb > ttl / 2 ? 'stale' : '') }, l ? dur(hb) : '-'),
      h('td', { class: 'num ' + (left !== null && left <= 0 ? 'expired' : '') }, l ? dur(left) : '-'),
      h('td', {}, services || '-'), h('td', {}, buttons)));
    const log = mine && doc.logs && doc.logs[s.id];
    if (log) rows.push(h('tr', { class: 'log' }, h('td', {}, ''), h('td', { colspan: cols - 1 }, log.join('\n'))));
  }
  fill($('slots').tBodies[0], rows, cols, fl && hostFilter ? 'no slots on ' + hostFilter : 'no slots yet (pool init)');
  $('actions-bar').replaceChildren(...(canAct ? [h('button', { onclick: () => act('scale-out') }, 'scale out'), ' ', h('button', { onclick: () => act('scale-in') }, 'scale in'), ' ', h('button', { onclick: () => act('cleanup-dry-run') }, 'cleanup (dry run)')] : []));
  // Queue
  head($('queue'), [...(fl ? ['host'] : []), '#', 'agent', 'task', 'priority', 'waiting for']);
  const queued = fl ? fl.hosts.filter((x) => shown(x.id)).flatMap((x) => (x.id === fl.me ? doc.pool.queue : x.queue).map((q, i) => ({ host: x.id, q, i }))) : doc.pool.queue.map((q, i) => ({ host: null, q, i }));
  // acquire --any-host waiters: any host may serve them, so every filter shows them.
  if (fl) for (const [i, q] of (fl.anyHost || []).entries()) queued.push({ host: 'any', from: q.host, q, i });
  fill($('queue').tBodies[0], queued.map(({ host, from, q, i }) => h('tr', { 'data-host': host }, ...(fl ? [h('td', { title: from ? 'acquire --any-host, waiting on ' + from : '' }, from ? 'any host (from ' + from + ')' : host)] : []), h('td', {}, i + 1), h('td', {}, q.agent), h('td', {}, q.task), h('td', { class: 'num' }, q.priority), h('td', { class: 'num' }, q.enqueuedAt ? dur(now() - Date.parse(q.enqueuedAt)) : '-'))), fl ? 6 : 5, 'nobody waiting');
  // Capacity
  const cap = [];
  cap.push(gauge('worktree slots', p.size, p.max, p.leased + ' leased of ' + p.size + ' (min ' + p.min + ', max ' + p.max + ')', [[p.min, 'min']], p.size >= p.max && p.waiters ? 'warning' : '', 'gauge-pool'));
  const r = m.redis;
  if (r && r.ok && r.band) cap.push(gauge('Redis band', r.band.used, r.band.physical_max, r.band.used + ' used / ' + r.band.current + ' current (floor ' + r.band.floor + ', physical ' + r.band.physical_max + ')', [[r.band.floor, 'floor'], [r.band.current, 'current']], r.band.used >= r.band.current ? 'warning' : '', 'gauge-band'));
  else cap.push(h('div', { class: 'gauge empty', id: 'gauge-band' }, r ? (r.ok ? 'Redis: no band yet' : 'Redis DOWN: ' + r.error) : 'Redis disabled'));
  const pg = m.postgres;
  if (pg && pg.ok) cap.push(gauge('PostgreSQL connections', pg.total, Math.max(pg.max - pg.reserved, t.DB_CONN_ERROR || 0), pg.total + ' (warn ' + t.DB_CONN_WARN + ', error ' + t.DB_CONN_ERROR + ', max ' + (pg.max - pg.reserved) + ')', [[t.DB_CONN_WARN, 'warn'], [t.DB_CONN_ERROR, 'error']], lvl(pg.total, t.DB_CONN_WARN, t.DB_CONN_ERROR), 'gauge-pg'));
  else cap.push(h('div', { class: 'gauge empty' }, pg ? 'PostgreSQL DOWN: ' + pg.error : 'PostgreSQL disabled'));
  if (m.fds.system) cap.push(gauge('file descriptors (system)', m.fds.system.pct, 100, m.fds.system.used + ' of ' + m.fds.system.max + ' (' + m.fds.system.pct + '%)', [[t.FD_WARN_PCT, 'warn']], lvl(m.fds.system.pct, t.FD_WARN_PCT, 95), 'gauge-fds'));
  cap.push(gauge('disk (pool worktrees)', m.disk.bytes, Math.max(t.DISK_ERROR || 0, m.disk.bytes), bytes(m.disk.bytes) + ' (warn ' + bytes(t.DISK_WARN) + ', error ' + bytes(t.DISK_ERROR) + (m.disk.free !== null ? ', ' + bytes(m.disk.free) + ' free' : '') + ')', [[t.DISK_WARN, 'warn']], lvl(m.disk.bytes, t.DISK_WARN, t.DISK_ERROR), 'gauge-disk'));
  $('capacity').replaceChildren(...cap);
  // Metrics
  const mt = doc.metrics;
  const mrows = [['lease duration p50 / p99', dur(mt.leaseDuration.p50) + ' / ' + dur(mt.leaseDuration.p99) + ' (' + mt.leaseDuration.count + ' leases)'], ['reset duration p50 / p99', dur(mt.resetDuration.p50) + ' / ' + dur(mt.resetDuration.p99)], ['errors', Object.entries(mt.errorsByKind).map(([k, v]) => k + ' ' + v).join(', ') || 'none']];
  fill($('metrics').tBodies[0], mrows.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v))), 2, '');
  // Integration
  const ig = doc.integration;
  $('integration').replaceChildren(...(!ig ? [h('div', { class: 'empty' }, 'no integration run yet')] : [h('div', {}, ig.current ? 'merging ' + ig.current.branch + ' into ' + ig.current.target + ' since ' + new Date(ig.current.startedAt).toLocaleTimeString() : 'idle'), h('table', {}, h('tbody', {}, ig.results.map((x) => h('tr', {}, h('td', {}, x.branch), h('td', { class: x.status === 'kept' ? 'state-ready' : 'state-broken' }, x.status), h('td', { title: x.reason }, x.reason)))))]));
  // Leaks
  const lk = doc.leaks;
  $('leaks').replaceChildren(...(!lk ? [h('div', { class: 'empty' }, 'checking…')] : lk.leaks.length ? [h('table', {}, h('tbody', {}, lk.leaks.map((x) => h('tr', {}, h('td', {}, x.kind), h('td', { title: x.fix }, x.message)))))] : [h('div', { class: 'empty' }, 'no leaks (checked ' + new Date(lk.at).toLocaleTimeString() + ')')]));
  // Events
  fill($('events').tBodies[0], doc.events.slice(0, 15).map((e) => h('tr', {}, h('td', {}, new Date(e.ts).toLocaleTimeString()), h('td', {}, h('b', {}, e.type)), h('td', {}, e.slot || ''), h('td', {}, [e.agent, e.task, e.reason, e.message].filter(Boolean).join(' · ')))), 4, 'no events yet');
  charts();
}

function chart(el, title, series, maxOf) {
  const W = 300, H = 90, hour = 3600e3, t1 = now(), t0 = t1 - hour;
  const pts = samples.filter((s) => Date.parse(s.at) >= t0);
  const max = Math.max(1, ...pts.map(maxOf));
  const box = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', role: 'img', 'aria-label': title });
  for (const [key, color] of series) {
    const d = pts.filter((s) => s[key] !== null).map((s) => ((Date.parse(s.at) - t0) / hour * W).toFixed(1) + ',' + (H - 4 - (s[key] / max) * (H - 8)).toFixed(1)).join(' ');
    if (d) box.append(svg('polyline', { points: d, fill: 'none', stroke: color, 'stroke-width': 2, 'vector-effect': 'non-scaling-stroke' }));
  }
  const lastS = pts[pts.length - 1];
  el.replaceChildren(h('div', { class: 'cap' }, h('span', {}, title), h('span', {}, lastS ? series.map(([k]) => k + ' ' + (lastS[k] ?? '-')).join(' · ') : 'no samples yet')), box, h('div', { class: 'cap' }, h('span', {}, '-60 min'), h('span', {}, 'max ' + max + ' · now')));
}
function charts() {
  chart($('chart-pool'), 'pool use (leased / size)', [['size', '#9aa3b5'], ['leased', '#0b57d0']], (s) => s.size);
  chart($('chart-queue'), 'queue length', [['waiters', '#b35900']], (s) => s.waiters);
  chart($('chart-band'), 'Redis band use', [['bandCurrent', '#9aa3b5'], ['bandUsed', '#1a7f37']], (s) => s.bandCurrent || 0);
}

// When each lease (slot#token) was first rendered, by the page's clock (tests read it).
window.leaseSeenAt = {};
function accept(d) {
  doc = d;
  const seen = new Date().toISOString();
  for (const sl of d.pool.slots) if (sl.lease) window.leaseSeenAt[sl.id + '#' + sl.lease.token] ??= seen;
  skew = Date.now() - Date.parse(d.at);
  const m = d.monitor, b = m.redis && m.redis.ok && m.redis.band;
  const s = { at: d.at, size: m.pool ? m.pool.size : 0, leased: m.pool ? m.pool.leased : 0, ready: m.pool ? m.pool.ready : 0, waiters: m.pool ? m.pool.waiters : 0, bandUsed: b ? b.used : null, bandCurrent: b ? b.current : null };
  // Live points between the kept samples, so the charts move with the table.
  if (!samples.length || Date.parse(s.at) - Date.parse(samples[samples.length - 1].at) >= 5000) samples.push(s);
  render();
}
async function loadHistory() {
  try { const r = await fetch('/api/history', { credentials: 'same-origin' }); if (r.ok) { samples = (await r.json()).samples; render(); } } catch {}
}
function connect() {
  const es = new EventSource('/api/events');
  es.addEventListener('hello', (e) => { const hi = JSON.parse(e.data); key = hi.token || null; canAct = Boolean(hi.actions && key); locked = false; $('conn').textContent = 'live'; $('conn').className = 'live'; loadHistory(); });
  es.addEventListener('status', (e) => accept(JSON.parse(e.data)));
  // EventSource reconnects by itself (the server sends retry: 1000); only say so.
  es.onerror = () => { $('conn').textContent = locked ? 'token required: open the URL monitor serve printed (…/?token=…)' : 'reconnecting…'; $('conn').className = 'down'; };
}
$('host-filter').addEventListener('change', (e) => { hostFilter = e.target.value; history.replaceState(null, '', hostFilter ? '#host=' + encodeURIComponent(hostFilter) : location.pathname); render(); });
window.addEventListener('hashchange', () => { hostFilter = decodeURIComponent((location.hash.match(/^#host=(.*)$/) || [])[1] || ''); render(); });
fetch('/api/status', { credentials: 'same-origin' }).then((r) => { if (r.status === 401) { locked = true; $('conn').textContent = 'token required: open the URL monitor serve printed (…/?token=…)'; throw new Error('401'); } return r.json(); }).then((d) => accept(d)).catch(() => {});
loadHistory();
connect();
setInterval(render, 1000);
`;
