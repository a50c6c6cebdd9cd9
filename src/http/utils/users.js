// Users (`_users`, server admins): create, reset a password, set roles, delete; each user's own
// database linked. 50 a page by name.
import { call, docPath, pageQuery, seg, userdb } from './api.js';
import { field, h, notice, onSubmit, replace } from './dom.js';
import { go } from './app.js';

const PAGE = 50;
const PREFIX = 'org.couchdb.user:';
const list = (v) => String(v ?? '').split(',').map((s) => s.trim()).filter(Boolean);

function userRow(doc, out, ctx) {
  const id = doc._id;
  const password = h('form', { class: 'inline compact' },
    h('input', { name: 'password', type: 'password', placeholder: 'new password', required: true, autocomplete: 'new-password' }),
    h('button', { type: 'submit' }, 'Reset'));
  const roles = h('form', { class: 'inline compact' },
    h('input', { name: 'roles', value: (doc.roles ?? []).join(', '), placeholder: 'roles, comma separated' }),
    h('button', { type: 'submit' }, 'Set roles'));
  const update = async (change, what) => {
    const current = await call('GET', docPath('_users', id));
    await call('PUT', docPath('_users', id), { ...current, ...change });
    replace(out, notice('ok', `${what} for ${doc.name}.`));
  };
  onSubmit(password, out, async (d) => { await update({ password: d.get('password') }, 'Password reset'); password.reset(); });
  onSubmit(roles, out, async (d) => update({ roles: list(d.get('roles')) }, 'Roles saved'));
  return h('tr', { 'data-user': doc.name },
    h('td', {}, doc.name),
    h('td', {}, h('a', { href: `#/db/${seg(userdb(doc.name))}` }, userdb(doc.name))),
    h('td', {}, password), h('td', {}, roles),
    h('td', {}, h('button', {
      class: 'danger small',
      onclick: async () => {
        if (!confirm(`Delete the user ${doc.name}?`)) return;
        try {
          const current = await call('GET', docPath('_users', id));
          await call('DELETE', `${docPath('_users', id)}?rev=${seg(current._rev)}`);
          ctx.route();
        } catch (err) {
          replace(out, notice('error', err.message));
        }
      },
    }, 'delete')));
}

export async function render(_params, ctx) {
  const after = ctx.query.get('after');
  const q = pageQuery(PAGE, after === null ? null : `${PREFIX}${after}`, PREFIX);
  q.set('include_docs', 'true');
  q.set('endkey', JSON.stringify(`${PREFIX}\ufff0`));
  const all = await call('GET', `/_users/_all_docs?${q}`);
  const docs = all.rows.filter((r) => r.doc).map((r) => r.doc).slice(0, PAGE);
  const more = all.rows.length > PAGE;
  const out = h('div');

  const create = h('form', { class: 'inline', id: 'create-user' },
    field('Name', h('input', { name: 'name', required: true, autocomplete: 'off' })),
    field('Password', h('input', { name: 'password', type: 'password', required: true, autocomplete: 'new-password' })),
    field('Roles', h('input', { name: 'roles', placeholder: 'comma separated' })),
    h('button', { type: 'submit' }, 'Create user'));
  onSubmit(create, out, async (d) => {
    const name = d.get('name');
    await call('PUT', docPath('_users', `${PREFIX}${name}`),
      { name, password: d.get('password'), roles: list(d.get('roles')), type: 'user' });
    replace(out, notice('ok', `Created ${name}, with the database ${userdb(name)}.`));
    create.reset();
    setTimeout(() => ctx.route(), 600);
  });

  return h('section', {},
    h('h1', {}, 'Users'),
    create,
    out,
    docs.length
      ? h('table', { class: 'list', id: 'users' },
        h('thead', {}, h('tr', {}, ['Name', 'Database', 'Password', 'Roles', ''].map((t) => h('th', {}, t)))),
        h('tbody', {}, docs.map((d) => userRow(d, out, ctx))))
      : h('p', { class: 'muted' }, 'No users yet.'),
    h('div', { class: 'pager' },
      after !== null && h('button', { onclick: () => history.back() }, '← Previous'),
      more && h('button', { onclick: () => go(`#/users?after=${seg(docs[docs.length - 1].name)}`) }, 'Next →')));
}
