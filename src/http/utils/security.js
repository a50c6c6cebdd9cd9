// A database's `_security`: admins and members by name and role.
import { call, seg } from './api.js';
import { field, h, notice, onSubmit, replace } from './dom.js';

const list = (v) => String(v ?? '').split(',').map((s) => s.trim()).filter(Boolean);

export async function render([db]) {
  const base = `#/db/${seg(db)}`;
  const sec = await call('GET', `/${seg(db)}/_security`);
  const out = h('div');
  const input = (name, v) => h('input', { name, value: (v ?? []).join(', '), placeholder: 'comma separated' });
  const form = h('form', { class: 'card', id: 'security' },
    h('h2', {}, 'Admins'),
    field('Names', input('admin_names', sec.admins?.names)),
    field('Roles', input('admin_roles', sec.admins?.roles)),
    h('h2', {}, 'Members'),
    field('Names', input('member_names', sec.members?.names)),
    field('Roles', input('member_roles', sec.members?.roles)),
    h('p', { class: 'muted' }, 'With no admins and no members the database is for server admins only.'),
    h('button', { type: 'submit' }, 'Save'),
    out);
  return h('section', {},
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, 'Databases'), ' / ', h('a', { href: base }, db), ' / security'),
    h('h1', {}, `Security of ${db}`),
    onSubmit(form, out, async (d) => {
      const next = {
        ...sec,
        admins: { ...sec.admins, names: list(d.get('admin_names')), roles: list(d.get('admin_roles')) },
        members: { ...sec.members, names: list(d.get('member_names')), roles: list(d.get('member_roles')) },
      };
      await call('PUT', `/${seg(db)}/_security`, next);
      replace(out, notice('ok', 'Saved.'));
    }));
}
