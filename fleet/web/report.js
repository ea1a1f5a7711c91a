import { api, el, nav } from './common.js';

const form = document.getElementById('query');
const today = new Date().toISOString().slice(0, 10);

function params() {
  const p = new URLSearchParams();
  for (const k of ['from', 'to', 'group', 'campaign']) if (form.elements[k].value) p.set(k, form.elements[k].value);
  return p;
}

async function show() {
  const p = params();
  history.replaceState(null, '', `/report?${p}`);
  document.getElementById('csv').setAttribute('href', `/api/report.csv?${p}`);
  const note = document.getElementById('note');
  note.textContent = 'loading…';
  try {
    const r = await api(`/api/report?${p}`);
    note.textContent = `${r.rows.length} screen-days from ${r.from} to ${r.to}. Played: completed in-window plays in the archive; target: what the screen planned.`;
    document.getElementById('groups').tBodies[0].replaceChildren(...r.groups.map((g) => el('tr', {},
      el('td', {}, g.day), el('td', {}, g.group), el('td', {}, g.campaignId), el('td', {}, g.screens), el('td', {}, g.met), el('td', {}, `${Math.round(g.share * 100)}%`))));
    document.getElementById('rows').tBodies[0].replaceChildren(...r.rows.map((x) => el('tr', { class: x.met ? 'met' : 'missed', 'data-device': x.deviceId },
      el('td', {}, x.day), el('td', {}, el('a', { href: `/screen?id=${encodeURIComponent(x.deviceId)}` }, x.deviceId)), el('td', {}, x.campaignId),
      el('td', { class: 'played' }, x.played), el('td', { class: 'target' }, x.target), el('td', {}, x.met ? 'yes' : 'NO'), el('td', {}, x.reported),
      el('td', {}, x.source === 'last-known' ? 'silent all day' : 'reported'))));
  } catch (e) {
    note.textContent = `cannot load the report: ${e.message}`;
  }
}

document.getElementById('top').replaceChildren(nav('/report'));
const q = new URLSearchParams(location.search);
form.elements.from.value = q.get('from') || today;
form.elements.to.value = q.get('to') || form.elements.from.value;
form.elements.group.value = q.get('group') || '';
form.elements.campaign.value = q.get('campaign') || '';
form.addEventListener('submit', (e) => { e.preventDefault(); show(); });
show();
