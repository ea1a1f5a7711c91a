import { age, api, bar, el, live, nav, time } from './common.js';

const id = new URLSearchParams(location.search).get('id') || '';
const $ = (x) => document.getElementById(x);

/** A nested object as key/value rows (`player.state`, `throttled.raw`, …). */
function flatten(o, prefix = '', out = []) {
  for (const [k, v] of Object.entries(o || {})) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) flatten(v, key, out);
    else out.push([key, Array.isArray(v) ? JSON.stringify(v) : String(v)]);
  }
  return out;
}

const kvRows = (o) => flatten(o).map(([k, v]) => el('tr', {}, el('th', {}, k), el('td', {}, v)));

function timeline(plays) {
  const box = $('timeline');
  const axis = $('axis');
  if (plays.length === 0) { box.replaceChildren(el('span', { class: 'muted' }, 'no plays archived for this day')); axis.replaceChildren(); return; }
  const hour = 3_600_000;
  const lo = Math.floor(Math.min(...plays.map((p) => Date.parse(p.startedAt))) / hour) * hour;
  const hi = Math.max(lo + hour, Math.ceil(Math.max(...plays.map((p) => Date.parse(p.endedAt))) / hour) * hour);
  const x = (t) => `${((100 * (t - lo)) / (hi - lo)).toFixed(3)}%`;
  box.replaceChildren(...plays.map((p) => {
    const mark = el('span', { class: `play ${p.outcome}${p.inWindow ? '' : ' outside'}`, title: `#${p.seq} ${p.campaignId} ${p.outcome} ${time(p.startedAt)}` });
    // CSSOM, not a style attribute: the CSP allows the one and refuses the other.
    mark.style.left = x(Date.parse(p.startedAt));
    mark.style.width = `max(2px, ${x(lo + Math.max(0, Date.parse(p.endedAt) - Date.parse(p.startedAt)))})`;
    return mark;
  }));
  const ticks = [];
  const step = Math.max(1, Math.round((hi - lo) / hour / 12)) * hour;
  for (let t = lo; t <= hi; t += step) {
    const tick = el('span', { class: 'tick' }, new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
    tick.style.left = x(t);
    ticks.push(tick);
  }
  axis.replaceChildren(...ticks);
}

async function load() {
  const d = await api(`/api/screens/${encodeURIComponent(id)}`);
  const t = d.tile;
  document.title = `${t.deviceId} · signage-fleet NOC`;
  $('title').replaceChildren(el('span', {}, t.deviceId), ' ', el('span', { class: `pill ${t.state}`, 'data-state': t.state }, t.state));
  $('summary').replaceChildren(
    `heartbeat ${age(t.heartbeatAgeSec)}`,
    t.cpuTempC !== null ? ` · ${t.cpuTempC.toFixed(1)} °C` : '',
    t.backlog !== null ? ` · backlog ${t.backlog}` : '',
    t.player ? ` · player ${t.player}` : '',
    t.power ? ` · power ${t.power}` : '',
    t.groups.length ? ` · groups ${t.groups.join(', ')}` : '');
  $('day').textContent = d.day || '-';
  $('compliance').replaceChildren(
    el('div', {}, bar(t.compliance)),
    ...d.compliance.map((c) => el('div', { class: 'muted' }, `${c.campaignId}: ${c.played}/${c.target}`, c.onTrack === false ? ' · behind' : '')));
  timeline(d.plays);
  $('plays').tBodies[0].replaceChildren(...d.plays.map((p) => el('tr', { class: p.outcome },
    el('td', {}, p.seq), el('td', {}, p.campaignId), el('td', {}, time(p.startedAt)), el('td', {}, time(p.endedAt)), el('td', {}, p.outcome), el('td', {}, p.inWindow ? 'yes' : 'no'))));
  $('heartbeat').tBodies[0].replaceChildren(...(d.heartbeat ? kvRows(d.heartbeat) : [el('tr', {}, el('td', {}, 'no heartbeat yet'))]));
  $('status').tBodies[0].replaceChildren(...kvRows({ ...(d.status || {}), storeId: t.storeId, statusAt: t.statusAt, lastPlayAt: t.lastPlayAt }));
  $('loss').replaceChildren(
    ...d.storeChanges.map((c) => el('li', { class: 'warn' }, `store replaced ${time(c.seenAt)}: ${c.previousStoreId} → ${c.storeId} (seen in ${c.source})`)),
    ...d.gaps.map((g) => el('li', { class: 'bad' }, `plays ${g.lo}–${g.hi} of store ${g.storeId} missing (since ${time(g.detectedAt)})`)),
    d.storeChanges.length + d.gaps.length === 0 ? el('li', { class: 'muted' }, 'no replaced store, no play lost') : null);
}

async function screenshot() {
  const btn = $('shot');
  btn.disabled = true;
  $('shot-status').textContent = 'asking the screen…';
  try {
    const r = await api(`/api/screens/${encodeURIComponent(id)}/screenshot`, { method: 'POST', headers: { 'x-noc-request': '1' } });
    if (!r.ok) throw new Error(r.error);
    const img = $('shot-img');
    img.src = `data:image/png;base64,${r.png}`;
    img.hidden = false;
    $('shot-status').textContent = `${r.bytes} bytes at ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    $('shot-status').textContent = `failed: ${e.message}`;
  } finally {
    btn.disabled = false;
  }
}

$('top').replaceChildren(nav(''));
$('shot').addEventListener('click', screenshot);
load().then(() => live((msg) => { if (msg.tiles.some((t) => t.deviceId === id)) load().catch(() => undefined); }),
  (e) => $('title').replaceChildren(el('span', { class: 'error' }, `cannot load ${id}: ${e.message}`)));
