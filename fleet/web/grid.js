import { age, api, bar, el, live, nav } from './common.js';

const STATES = ['online', 'stale', 'standby', 'offline'];
const tiles = new Map();
let groups = [];
const select = document.getElementById('group');

function tileView(t) {
  const badges = [];
  if (t.throttled && t.throttled.now) badges.push(el('span', { class: 'badge warn', title: `get_throttled ${t.throttled.raw}` }, t.throttled.underVoltage ? 'under-voltage' : 'throttled'));
  else if (t.throttled && t.throttled.occurred) badges.push(el('span', { class: 'badge', title: `get_throttled ${t.throttled.raw}` }, 'throttled since boot'));
  if (t.storeReplaced) badges.push(el('span', { class: 'badge warn', title: `last at ${t.storeReplaced.lastAt}` }, `store replaced ×${t.storeReplaced.count}`));
  if (t.seqMissing > 0) badges.push(el('span', { class: 'badge bad' }, `${t.seqMissing} plays lost`));
  if (t.backlog) badges.push(el('span', { class: 'badge' }, `backlog ${t.backlog}`));
  return el('a', { class: `tile ${t.state}`, href: `/screen?id=${encodeURIComponent(t.deviceId)}`, 'data-device': t.deviceId, 'data-state': t.state },
    el('div', { class: 'head' }, el('span', { class: 'id' }, t.deviceId), el('span', { class: 'state' }, t.state)),
    el('div', { class: 'line' }, bar(t.compliance)),
    el('div', { class: 'line muted' },
      `heartbeat ${age(t.heartbeatAgeSec)}`,
      t.cpuTempC !== null ? ` · ${t.cpuTempC.toFixed(1)} °C` : '',
      t.groups.length ? ` · ${t.groups.join(', ')}` : ''),
    badges.length ? el('div', { class: 'line badges' }, badges) : null);
}

function render() {
  const g = select.value;
  const shown = [...tiles.values()].filter((t) => !g || t.groups.includes(g)).sort((a, b) => a.deviceId.localeCompare(b.deviceId));
  const counts = Object.fromEntries(STATES.map((s) => [s, 0]));
  for (const t of shown) counts[t.state]++;
  document.getElementById('counts').replaceChildren(
    el('span', { class: 'count total' }, el('b', { 'data-count': 'total' }, shown.length), ' screens'),
    ...STATES.map((s) => el('span', { class: `count ${s}` }, el('b', { 'data-count': s }, counts[s]), ` ${s}`)));
  document.getElementById('grid').replaceChildren(...shown.map(tileView));
  document.getElementById('empty').hidden = tiles.size > 0;
}

function setGroups(list) {
  const known = new Set(groups);
  for (const g of list) if (!known.has(g)) select.append(el('option', { value: g }, g));
  groups = [...new Set([...groups, ...list])];
}

async function load() {
  const g = await api('/api/grid');
  tiles.clear();
  for (const t of g.tiles) tiles.set(t.deviceId, t);
  setGroups(g.groups);
  const want = new URLSearchParams(location.search).get('group');
  if (want && groups.includes(want)) select.value = want;
  render();
}

document.getElementById('top').replaceChildren(nav('/'));
select.addEventListener('change', () => {
  const u = new URL(location.href);
  if (select.value) u.searchParams.set('group', select.value); else u.searchParams.delete('group');
  history.replaceState(null, '', u);
  render();
});
load().then(() => {
  live((msg) => {
    if (msg.counts) tiles.clear(); // a full grid
    for (const t of msg.tiles) tiles.set(t.deviceId, t);
    setGroups(msg.tiles.flatMap((t) => t.groups));
    render();
  });
}, (e) => document.getElementById('grid').replaceChildren(el('p', { class: 'error' }, `cannot load the grid: ${e.message}`)));
