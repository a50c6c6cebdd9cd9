// A database's documents, 25 a page by id (`_all_docs` with `startkey`), or those whose id
// starts with a prefix; links to its live changes and `_security`, a new document.
import { call, pageQuery, seg } from './api.js';
import { field, h, onSubmit } from './dom.js';
import { go } from './app.js';

const PAGE = 25;

export async function render([db], ctx) {
  const prefix = ctx.query.get('prefix') ?? '';
  const after = ctx.query.get('after');
  const q = pageQuery(PAGE, after, prefix);
  if (prefix) q.set('endkey', JSON.stringify(`${prefix}\ufff0`));
  const [info, all] = await Promise.all([
    call('GET', `/${seg(db)}`),
    call('GET', `/${seg(db)}/_all_docs?${q}`),
  ]);
  const rows = all.rows.slice(0, PAGE);
  const more = all.rows.length > PAGE;
  const base = `#/db/${seg(db)}`;
  const out = h('div');

  const search = h('form', { class: 'inline', id: 'search' },
    field('Id starts with', h('input', { name: 'prefix', value: prefix })),
    h('button', { type: 'submit' }, 'Search'));
  onSubmit(search, out, async (data) => go(`${base}?prefix=${seg(data.get('prefix'))}`));

  const nextQuery = new URLSearchParams();
  if (prefix) nextQuery.set('prefix', prefix);
  if (rows.length) nextQuery.set('after', rows[rows.length - 1].id);

  return h('section', {},
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, 'Databases'), ' / ', db),
    h('h1', {}, db),
    h('p', { class: 'muted', id: 'db-info' },
      `${info.doc_count} documents, ${info.doc_del_count} deleted, update seq ${info.update_seq}`),
    h('div', { class: 'toolbar' },
      h('a', { class: 'button', id: 'new-doc', href: `${base}/new` }, 'New document'),
      h('a', { class: 'button', id: 'live-changes', href: `${base}/changes` }, 'Live changes'),
      h('a', { class: 'button', href: `${base}/security` }, 'Security'),
      search),
    out,
    rows.length
      ? h('table', { class: 'list', id: 'documents' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Id'), h('th', {}, 'Revision'))),
        h('tbody', {}, rows.map((r) => h('tr', { 'data-id': r.id },
          h('td', {}, h('a', { href: `${base}/doc/${seg(r.id)}` }, r.id)),
          h('td', { class: 'mono' }, r.value.rev)))))
      : h('p', { class: 'muted' }, prefix ? `No document id starts with “${prefix}”.` : 'No documents yet.'),
    h('div', { class: 'pager' },
      after !== null && h('button', { onclick: () => history.back() }, '← Previous'),
      more && h('a', { class: 'button', id: 'next', href: `${base}?${nextQuery}` }, 'Next →')));
}
