// The page's frame: who is logged in, the navigation, and a router from `#/…` to a page. Each
// page is a module exporting `render(params, ctx)` that returns an element; `ctx.onLeave`
// registers what to stop (a live feed) when the page is left.
import { call } from './api.js';
import { h, notice, replace } from './dom.js';

const routes = [
  [/^\/login$/, () => import('./login.js'), 'login'],
  [/^\/$/, () => import('./databases.js'), 'databases'],
  [/^\/db\/([^/]+)$/, () => import('./documents.js'), 'documents'],
  [/^\/db\/([^/]+)\/new$/, () => import('./document.js'), 'new'],
  [/^\/db\/([^/]+)\/doc\/(.+)$/, () => import('./document.js'), 'document'],
  [/^\/db\/([^/]+)\/changes$/, () => import('./changes.js'), 'changes'],
  [/^\/db\/([^/]+)\/security$/, () => import('./security.js'), 'security'],
  [/^\/users$/, () => import('./users.js'), 'users'],
  [/^\/kv$/, () => import('./kv.js'), 'namespaces'],
  [/^\/kv\/([^/]+)$/, () => import('./kv.js'), 'keys'],
  [/^\/tokens$/, () => import('./tokens.js'), 'tokens'],
];

/** Who is logged in: {name, roles, admin}, or null. */
export const session = { user: null };

export async function refreshSession() {
  const s = await call('GET', '/_session');
  const ctx = s.userCtx;
  session.user = ctx.name ? { name: ctx.name, roles: ctx.roles, admin: ctx.roles.includes('_admin') } : null;
  renderTop();
  return session.user;
}

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function renderTop() {
  const u = session.user;
  const link = (href, text) => h('a', { href }, text);
  replace(document.getElementById('nav'), u && [
    link('#/', 'Databases'),
    u.admin && [link('#/users', 'Users'), link('#/kv', 'KV namespaces'), link('#/tokens', 'API tokens')],
  ]);
  replace(document.getElementById('who'), u
    ? [h('span', { class: 'me', title: 'who am I' }, u.name,
        u.roles.length ? h('small', {}, ` (${u.roles.join(', ')})`) : null),
      h('button', { class: 'link', id: 'logout', onclick: logout }, 'Log out')]
    : h('a', { href: '#/login' }, 'Log in'));
}

async function logout() {
  await call('DELETE', '/_session').catch(() => {});
  session.user = null;
  renderTop();
  go('#/login');
}

let leaving = [];

async function route() {
  for (const fn of leaving.splice(0)) {
    try { fn(); } catch { /* the page is gone anyway */ }
  }
  const view = document.getElementById('view');
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = raw.split('?');
  const found = routes.find(([re]) => re.test(path));
  if (!found) {
    replace(view, notice('error', `No page at ${path}`));
    return;
  }
  const [re, load, name] = found;
  if (!session.user && name !== 'login') {
    go('#/login');
    return;
  }
  const params = re.exec(path).slice(1).map(decodeURIComponent);
  const ctx = {
    page: name,
    query: new URLSearchParams(query),
    session,
    onLeave: (fn) => leaving.push(fn),
    route,
  };
  document.body.dataset.page = name;
  try {
    const mod = await load();
    const el = await mod.render(params, ctx);
    replace(view, el);
  } catch (err) {
    if (err.status === 401) {
      session.user = null;
      renderTop();
      go('#/login');
      return;
    }
    replace(view, notice('error', err.message));
  }
}

window.addEventListener('hashchange', route);
refreshSession()
  .catch(() => null)
  .then(route);
