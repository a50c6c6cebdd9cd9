// KV namespaces (the Cloudflare v4 API, server admins): namespaces listed, made and deleted;
// a namespace's keys by prefix, 100 a page with the API's cursor; a key's value, metadata and
// expiration; put and delete; a JSON file in wrangler's bulk format imported 1,000 keys a
// request with a progress bar.
import { KV, call, kv, seg } from './api.js';
import { bytes, field, h, notice, onSubmit, replace } from './dom.js';
import { go } from './app.js';

const PAGE = 100;
const BATCH = 1000;

async function namespaces(ctx) {
  const page = Math.max(1, Number(ctx.query.get('page')) || 1);
  const res = await call('GET', `${KV}?per_page=50&page=${page}&order=title`);
  const out = h('div');
  const create = h('form', { class: 'inline', id: 'create-ns' },
    field('New namespace', h('input', { name: 'title', required: true })),
    h('button', { type: 'submit' }, 'Create'));
  onSubmit(create, out, async (d) => {
    const ns = await kv('POST', '', { title: d.get('title') });
    go(`#/kv/${seg(ns.id)}`);
  });
  const info = res.result_info ?? {};
  return h('section', {},
    h('h1', {}, 'KV namespaces'),
    create, out,
    res.result.length
      ? h('table', { class: 'list', id: 'namespaces' },
        h('thead', {}, h('tr', {}, ['Title', 'Id', ''].map((t) => h('th', {}, t)))),
        h('tbody', {}, res.result.map((ns) => h('tr', { 'data-ns': ns.title },
          h('td', {}, h('a', { href: `#/kv/${seg(ns.id)}` }, ns.title)),
          h('td', { class: 'mono' }, ns.id),
          h('td', {}, h('button', {
            class: 'danger small',
            onclick: async () => {
              if (!confirm(`Delete the namespace ${ns.title} and every key in it?`)) return;
              try {
                await kv('DELETE', `/${seg(ns.id)}`);
                ctx.route();
              } catch (err) {
                replace(out, notice('error', err.message));
              }
            },
          }, 'delete'))))))
      : h('p', { class: 'muted' }, 'No namespaces yet.'),
    h('div', { class: 'pager' },
      page > 1 && h('a', { class: 'button', href: `#/kv?page=${page - 1}` }, '← Previous'),
      info.total_count > page * 50 && h('a', { class: 'button', href: `#/kv?page=${page + 1}` }, 'Next →')));
}

/** A key's value (text when it is UTF-8, else its size and a download), metadata, expiration. */
async function showKey(nsId, name, pane, out, reload) {
  const path = `${KV}/${seg(nsId)}/values/${seg(name)}`;
  const res = await call('GET', path, undefined, { as: 'response' });
  const buf = await res.arrayBuffer();
  const expiration = res.headers.get('expiration');
  let value;
  try {
    value = h('pre', { class: 'json', id: 'kv-value' }, new TextDecoder('utf-8', { fatal: true }).decode(buf));
  } catch {
    const url = URL.createObjectURL(new Blob([buf]));
    value = h('p', {}, `Binary, ${bytes(buf.byteLength)}: `, h('a', { href: url, download: name }, 'download'));
  }
  const meta = await call('GET', `${KV}/${seg(nsId)}/metadata/${seg(name)}`).then((r) => r.result, () => null);
  replace(pane,
    h('h2', {}, name),
    h('p', { class: 'muted' }, `${bytes(buf.byteLength)}${expiration ? `, expires ${new Date(Number(expiration) * 1000).toISOString()}` : ''}`),
    value,
    h('h3', {}, 'Metadata'),
    h('pre', { class: 'json', id: 'kv-metadata' }, meta === null || meta === undefined ? '(none)' : JSON.stringify(meta, null, 2)),
    h('button', {
      class: 'danger',
      onclick: async () => {
        if (!confirm(`Delete the key ${name}?`)) return;
        try {
          await kv('DELETE', `/${seg(nsId)}/values/${seg(name)}`);
          replace(pane, h('p', { class: 'muted' }, `Deleted ${name}.`));
          await reload();
        } catch (err) {
          replace(out, notice('error', err.message));
        }
      },
    }, 'Delete key'));
}

/** wrangler's bulk file: [{key, value, base64?, expiration?, expiration_ttl?, metadata?}]. */
function importer(nsId, out, reload) {
  const bar = h('progress', { id: 'import-progress', max: 1, value: 0 });
  const label = h('span', { id: 'import-status' });
  const form = h('form', { class: 'inline', id: 'import' },
    field('Import a JSON file (wrangler’s bulk format)', h('input', { type: 'file', name: 'file', accept: 'application/json,.json', required: true })),
    h('button', { type: 'submit' }, 'Import'), bar, label);
  return onSubmit(form, out, async (d) => {
    let items;
    try {
      items = JSON.parse(await d.get('file').text());
    } catch (err) {
      throw new Error(`The file is not JSON: ${err.message}`);
    }
    if (!Array.isArray(items) || items.some((i) => typeof i?.key !== 'string' || typeof i?.value !== 'string')) {
      throw new Error('The file must be a JSON array of {"key": string, "value": string, …}');
    }
    bar.max = items.length || 1;
    bar.value = 0;
    for (let i = 0; i < items.length; i += BATCH) {
      const chunk = items.slice(i, i + BATCH);
      await kv('PUT', `/${seg(nsId)}/bulk`, chunk);
      bar.value = i + chunk.length;
      replace(label, `${i + chunk.length} of ${items.length}`);
    }
    replace(out, notice('ok', `Imported ${items.length} keys.`));
    await reload();
  });
}

async function keys(nsId, ctx) {
  const prefix = ctx.query.get('prefix') ?? '';
  const cursor = ctx.query.get('cursor') ?? '';
  const ns = await kv('GET', `/${seg(nsId)}`);
  const base = `#/kv/${seg(nsId)}`;
  const out = h('div');
  const pane = h('div', { class: 'card', id: 'kv-key' }, h('p', { class: 'muted' }, 'Pick a key to see its value and metadata.'));
  const listing = h('div', { id: 'kv-listing' });

  // The list alone is redrawn after a write, so messages and the progress bar stay.
  const list = async () => {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (prefix) q.set('prefix', prefix);
    if (cursor) q.set('cursor', cursor);
    const res = await call('GET', `${KV}/${seg(nsId)}/keys?${q}`);
    const next = res.result_info?.cursor;
    replace(listing,
      res.result.length
        ? h('table', { class: 'list', id: 'keys' },
          h('thead', {}, h('tr', {}, ['Key', 'Expires'].map((t) => h('th', {}, t)))),
          h('tbody', {}, res.result.map((k) => h('tr', { 'data-key': k.name },
            h('td', {}, h('button', {
              class: 'link',
              onclick: () => showKey(nsId, k.name, pane, out, reload).catch((err) => replace(out, notice('error', err.message))),
            }, k.name)),
            h('td', { class: 'mono' }, k.expiration ? new Date(k.expiration * 1000).toISOString() : '')))))
        : h('p', { class: 'muted' }, 'No keys here.'),
      h('div', { class: 'pager' },
        cursor && h('button', { onclick: () => history.back() }, '← Previous'),
        next && h('a', { class: 'button', id: 'next', href: `${base}?${new URLSearchParams({ prefix, cursor: next })}` }, 'Next →')));
  };
  const reload = () => list().catch((err) => replace(out, notice('error', err.message)));
  await list();

  const search = h('form', { class: 'inline' },
    field('Prefix', h('input', { name: 'prefix', value: prefix })),
    h('button', { type: 'submit' }, 'List'));
  onSubmit(search, out, async (d) => go(`${base}?prefix=${seg(d.get('prefix'))}`));

  const put = h('form', { class: 'card', id: 'kv-put' },
    h('h2', {}, 'Put a key'),
    field('Key', h('input', { name: 'key', required: true })),
    field('Value', h('textarea', { name: 'value', rows: 3 })),
    field('Metadata (JSON, optional)', h('textarea', { name: 'metadata', rows: 2, class: 'json' })),
    field('Expires in (seconds, optional, ≥ 60)', h('input', { name: 'ttl', type: 'number', min: 60 })),
    h('button', { type: 'submit' }, 'Put'));
  onSubmit(put, out, async (d) => {
    const form = new FormData();
    form.append('value', d.get('value'));
    const metadata = d.get('metadata').trim();
    if (metadata) {
      try { JSON.parse(metadata); } catch (err) { throw new Error(`Metadata is not JSON: ${err.message}`); }
      form.append('metadata', metadata);
    }
    const ttl = d.get('ttl');
    await call('PUT', `${KV}/${seg(nsId)}/values/${seg(d.get('key'))}${ttl ? `?expiration_ttl=${seg(ttl)}` : ''}`, form);
    replace(out, notice('ok', `Put ${d.get('key')}.`));
    await reload();
  });

  return h('section', {},
    h('p', { class: 'crumbs' }, h('a', { href: '#/kv' }, 'KV namespaces'), ' / ', ns.title),
    h('h1', {}, ns.title),
    h('div', { class: 'toolbar' }, search, importer(nsId, out, reload)),
    out,
    h('div', { class: 'split' }, listing, h('div', {}, pane, put)));
}

export async function render([nsId], ctx) {
  return ctx.page === 'keys' ? keys(nsId, ctx) : namespaces(ctx);
}
