// Shared by the NOC pages. Everything a screen sent (ids, heartbeat fields, errors) is untrusted:
// it reaches the page only as text nodes (el() below), never as markup, and the CSP forbids
// inline script and style in any case.

/** An element with attributes and children; strings become text nodes. */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = String(v);
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export async function api(path, init) {
  const r = await fetch(path, { credentials: 'same-origin', ...init });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || `${r.status} ${r.statusText}`);
  return body;
}

export function age(sec) {
  if (sec === null || sec === undefined) return 'never';
  if (sec < 90) return `${sec}s ago`;
  if (sec < 5400) return `${Math.round(sec / 60)}m ago`;
  if (sec < 172800) return `${Math.round(sec / 3600)}h ago`;
  return `${Math.round(sec / 86400)}d ago`;
}

export function time(iso) {
  if (!iso) return '-';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

/** The live stream: `tiles` (some screens changed) and `grid` (all of them, every 10 s). */
export function live(onTiles) {
  const es = new EventSource('/api/events');
  const take = (ev) => { try { onTiles(JSON.parse(ev.data)); } catch { /* a torn event: the next one repairs it */ } };
  es.addEventListener('tiles', take);
  es.addEventListener('grid', take);
  es.addEventListener('open', () => document.body.setAttribute('data-live', 'open'));
  es.addEventListener('error', () => document.body.setAttribute('data-live', 'retrying'));
  return es;
}

export function nav(current) {
  const links = [['/', 'Fleet'], ['/report', 'Compliance report']];
  return el('nav', {}, el('strong', {}, 'signage-fleet NOC'), ...links.map(([href, label]) => el('a', { href, class: href === current ? 'current' : undefined }, label)));
}

/** played/target as a <meter> (no inline style needed, which the CSP would refuse). */
export function bar(c) {
  if (!c || !c.target) return el('span', { class: 'muted' }, 'no plan');
  const pct = Math.round((100 * c.played) / c.target);
  return el('span', { class: 'bar' },
    el('meter', { min: 0, max: c.target, low: c.target * 0.5, high: c.target * 0.99, optimum: c.target, value: c.played, title: `${c.day}: ${c.played}/${c.target}` }),
    el('span', { class: 'num' }, `${c.played}/${c.target} (${pct}%)`));
}
