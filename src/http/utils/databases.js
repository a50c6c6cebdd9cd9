// Databases: for a server admin every database, 20 a page by name (`_all_dbs` with `startkey`,
// so a million databases page as fast as ten); for a user, their own database. Create, delete.
import { call, pageQuery, seg, userdb } from './api.js';
import { bytes, field, h, notice, onSubmit, replace } from './dom.js';
import { go } from './app.js';

const PAGE = 20;

function dbLink(name) {
  return h('a', { href: `#/db/${seg(name)}` }, name);
}

/** One row: the name at once, the info when it arrives. */
function row(name, admin, out) {
  const cells = [h('td', {}, '…'), h('td', {}, '…'), h('td', {}, '…'), h('td', {}, '…')];
  const tr = h('tr', { 'data-db': name }, h('td', {}, dbLink(name)), cells,
    h('td', { class: 'actions' },
      h('a', { href: `#/db/${seg(name)}/changes` }, 'changes'),
      h('a', { href: `#/db/${seg(name)}/security` }, 'security'),
      admin && h('button', {
        class: 'danger small',
        onclick: async () => {
          if (!confirm(`Delete the database ${name} and every document in it?`)) return;
          try {
            await call('DELETE', `/${seg(name)}`);
            tr.remove();
            replace(out, notice('ok', `Deleted ${name}.`));
          } catch (err) {
            replace(out, notice('error', err.message));
          }
        },
      }, 'delete')));
  call('GET', `/${seg(name)}`).then((info) => {
    replace(cells[0], String(info.doc_count));
    replace(cells[1], String(info.doc_del_count));
    replace(cells[2], String(info.update_seq));
    replace(cells[3], bytes(info.sizes?.active ?? NaN));
  }, (err) => replace(cells[0], err.status === 404 ? 'not created' : err.error));
  return tr;
}

function table(names, admin, out) {
  return h('table', { class: 'list', id: 'databases' },
    h('thead', {}, h('tr', {}, ['Name', 'Documents', 'Deleted', 'Update seq', 'Size', ''].map((t) => h('th', {}, t)))),
    h('tbody', {}, names.map((n) => row(n, admin, out))));
}

export async function render(_params, ctx) {
  const user = ctx.session.user;
  const out = h('div');
  if (!user.admin) {
    const own = userdb(user.name);
    const open = h('form', { class: 'inline' },
      field('Open a database you are a member of', h('input', { name: 'db', required: true })),
      h('button', { type: 'submit' }, 'Open'));
    onSubmit(open, out, async (data) => go(`#/db/${seg(data.get('db'))}`));
    return h('section', {}, h('h1', {}, 'Your databases'), out, table([own], false, out), open);
  }

  const after = ctx.query.get('after');
  const from = ctx.query.get('from');
  const names = await call('GET', `/_all_dbs?${pageQuery(PAGE, after, from)}`);
  const more = names.length > PAGE;
  const shown = names.slice(0, PAGE);

  const create = h('form', { class: 'inline', id: 'create-db' },
    field('New database', h('input', { name: 'name', required: true, placeholder: 'lowercase name', pattern: '[a-z][a-z0-9_\\$\\(\\)\\+\\/\\-]*' })),
    h('button', { type: 'submit' }, 'Create'));
  onSubmit(create, out, async (data) => {
    const name = data.get('name');
    await call('PUT', `/${seg(name)}`);
    go(`#/db/${seg(name)}`);
  });
  const jump = h('form', { class: 'inline' },
    field('Go to name', h('input', { name: 'from', placeholder: 'starts at…' })),
    h('button', { type: 'submit' }, 'Go'));
  onSubmit(jump, out, async (data) => go(`#/?from=${seg(data.get('from'))}`));

  return h('section', {},
    h('h1', {}, 'Databases'),
    h('div', { class: 'toolbar' }, create, jump),
    out,
    shown.length ? table(shown, true, out) : h('p', { class: 'muted' }, 'No databases here.'),
    h('div', { class: 'pager' },
      (after !== null || from) && h('button', { onclick: () => history.back() }, '← Previous'),
      more && h('a', { class: 'button', id: 'next', href: `#/?after=${seg(shown[shown.length - 1])}` }, 'Next →')));
}
