// API tokens for the KV API (server admins): listed without secrets, made (the token shown
// once, here, and never again), revoked at once.
import { call, seg } from './api.js';
import { field, h, notice, onSubmit, replace } from './dom.js';

const when = (s) => (s ? new Date(s * 1000).toISOString().replace('.000Z', 'Z') : 'never');

export async function render(_params, ctx) {
  const res = await call('GET', '/_couchkv/tokens');
  const out = h('div', { id: 'token-messages' });
  const create = h('form', { class: 'card', id: 'create-token' },
    h('h2', {}, 'New token'),
    field('Name', h('input', { name: 'name', required: true })),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'write' }), ' may write'),
    field('Namespaces (ids, comma separated; empty for all)', h('input', { name: 'namespaces' })),
    field('Expires in (seconds; empty for never)', h('input', { name: 'expires_in', type: 'number', min: 1 })),
    h('button', { type: 'submit' }, 'Create token'));
  onSubmit(create, out, async (d) => {
    const body = {
      name: d.get('name'),
      write: d.get('write') === 'on',
      namespaces: String(d.get('namespaces')).split(',').map((s) => s.trim()).filter(Boolean),
    };
    if (d.get('expires_in')) body.expires_in = Number(d.get('expires_in'));
    const made = await call('POST', '/_couchkv/tokens', body);
    const secret = made.result.token;
    replace(out, notice('ok',
      h('p', {}, h('strong', {}, 'Copy this token now: it is not shown again.')),
      h('code', { id: 'new-token', class: 'secret' }, secret), ' ',
      h('button', { type: 'button', onclick: () => navigator.clipboard?.writeText(secret) }, 'Copy'),
      h('p', {}, h('button', { type: 'button', class: 'link', onclick: () => ctx.route() }, 'Done (refresh the list)'))));
    create.reset();
  });
  return h('section', {},
    h('h1', {}, 'API tokens'),
    h('p', { class: 'muted' }, 'Bearer tokens for the KV API (wrangler, the Cloudflare SDK). Only a digest of each is kept.'),
    out,
    res.result.length
      ? h('table', { class: 'list', id: 'tokens' },
        h('thead', {}, h('tr', {}, ['Name', 'Id', 'Access', 'Namespaces', 'Created', 'Expires', ''].map((t) => h('th', {}, t)))),
        h('tbody', {}, res.result.map((t) => h('tr', { 'data-token': t.name },
          h('td', {}, t.name), h('td', { class: 'mono' }, t.id),
          h('td', {}, t.write ? 'read, write' : 'read'),
          h('td', {}, t.namespaces.length ? t.namespaces.join(', ') : 'all'),
          h('td', {}, when(t.created)), h('td', {}, when(t.expires)),
          h('td', {}, h('button', {
            class: 'danger small',
            onclick: async () => {
              if (!confirm(`Revoke the token ${t.name}? Clients using it are refused at once.`)) return;
              try {
                await call('DELETE', `/_couchkv/tokens/${seg(t.id)}`);
                ctx.route();
              } catch (err) {
                replace(out, notice('error', err.message));
              }
            },
          }, 'revoke'))))))
      : h('p', { class: 'muted' }, 'No tokens.'),
    create);
}
