// A database's changes as they happen: the latest 20, then `_changes?feed=eventsource` from
// there (the browser reconnects by itself with Last-Event-ID). The feed closes when the page
// is left.
import { call, seg } from './api.js';
import { h, replace } from './dom.js';

const KEEP = 500;

function row(db, change, live) {
  const rev = change.changes?.[0]?.rev ?? '';
  return h('tr', { class: live ? 'fresh' : '', 'data-id': change.id },
    h('td', { class: 'mono' }, live ? new Date().toLocaleTimeString() : ''),
    h('td', { class: 'mono' }, String(change.seq)),
    h('td', {}, h('a', { href: `#/db/${seg(db)}/doc/${seg(change.id)}` }, change.id)),
    h('td', { class: 'mono' }, rev),
    h('td', {}, change.deleted ? 'deleted' : ''));
}

export async function render([db], ctx) {
  const base = `#/db/${seg(db)}`;
  // The sequence first, then the latest rows: a change in between shows twice, never not at all.
  const { update_seq: since } = await call('GET', `/${seg(db)}`);
  const recent = await call('GET', `/${seg(db)}/_changes?descending=true&limit=20`);
  const body = h('tbody', {}, recent.results.map((c) => row(db, c, false)));
  const status = h('span', { class: 'status', id: 'feed-status' }, 'connecting…');
  const es = new EventSource(`/${seg(db)}/_changes?feed=eventsource&heartbeat=10000&since=${seg(String(since))}`);
  ctx.onLeave(() => es.close());
  es.onopen = () => replace(status, 'live');
  es.onerror = () => replace(status, es.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting…');
  es.onmessage = (e) => {
    let change;
    try { change = JSON.parse(e.data); } catch { return; }
    body.prepend(row(db, change, true));
    while (body.children.length > KEEP) body.lastElementChild.remove();
  };
  return h('section', {},
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, 'Databases'), ' / ', h('a', { href: base }, db), ' / changes'),
    h('h1', {}, `Changes of ${db} `, status),
    h('p', { class: 'muted' }, 'Newest first; new changes appear as they are written, from any client.'),
    h('table', { class: 'list', id: 'changes' },
      h('thead', {}, h('tr', {}, ['Seen', 'Seq', 'Id', 'Revision', ''].map((t) => h('th', {}, t)))),
      body));
}
