// Log in with a name and password: `POST /_session` sets the AuthSession cookie.
import { call } from './api.js';
import { field, h, notice, onSubmit, replace } from './dom.js';
import { go, refreshSession } from './app.js';

export function render() {
  const out = h('div');
  const form = h('form', { class: 'card narrow', id: 'login' },
    h('h1', {}, 'Log in'),
    field('Name', h('input', { name: 'name', autocomplete: 'username', required: true, autofocus: true })),
    field('Password', h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })),
    h('button', { type: 'submit' }, 'Log in'),
    out);
  return onSubmit(form, out, async (data) => {
    await call('POST', '/_session', { name: data.get('name'), password: data.get('password') });
    const user = await refreshSession();
    if (!user) {
      replace(out, notice('error', 'The server did not keep the session (are cookies allowed?)'));
      return;
    }
    go('#/');
  });
}
