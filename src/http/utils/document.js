// One document: its JSON exactly as stored (edited as text, so numbers and field order stay as
// they were), saved with its `_rev` (a 409 shown as such), its revision tree, any revision's
// body, its attachments (download, upload, delete). Also the editor for a new document.
import { attPath, call, docPath, pretty, seg } from './api.js';
import { bytes, field, h, notice, onSubmit, replace } from './dom.js';
import { go } from './app.js';
import { drawTree } from './revtree.js';

function editor(text) {
  return h('textarea', { id: 'doc-json', class: 'json', spellcheck: 'false', rows: 18, value: text });
}

/** The `_id` of JSON text, or an error a person can act on. */
function parsed(text) {
  try {
    const v = JSON.parse(text);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('a document is a JSON object');
    return v;
  } catch (err) {
    throw new Error(`Not valid JSON: ${err.message}`);
  }
}

function newDocument(db) {
  const out = h('div');
  const base = `#/db/${seg(db)}`;
  const id = crypto.randomUUID().replaceAll('-', '');
  const text = editor(`{\n  "_id": "${id}"\n}`);
  const form = h('form', { id: 'doc-form' }, text, h('button', { type: 'submit' }, 'Create'), out);
  onSubmit(form, out, async () => {
    const doc = parsed(text.value);
    const res = doc._id === undefined
      ? await call('POST', `/${seg(db)}`, text.value)
      : await call('PUT', docPath(db, doc._id), text.value);
    go(`${base}/doc/${seg(res.id)}`);
  });
  return h('section', {},
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, 'Databases'), ' / ', h('a', { href: base }, db), ' / new'),
    h('h1', {}, 'New document'), form);
}

async function load(db, id) {
  try {
    return { text: await call('GET', docPath(db, id), undefined, { as: 'text' }) };
  } catch (err) {
    if (err.status === 404 && err.reason === 'deleted') return { deleted: true };
    throw err;
  }
}

export async function render([db, id], ctx) {
  if (ctx.page === 'new') return newDocument(db);
  const base = `#/db/${seg(db)}`;
  const [current, leaves] = await Promise.all([
    load(db, id),
    call('GET', `${docPath(db, id)}?open_revs=all&revs=true`),
  ]);
  const doc = current.text ? JSON.parse(current.text) : null;
  const out = h('div', { id: 'doc-messages' });

  // The editor and its save.
  let body;
  if (doc) {
    const text = editor(pretty(current.text));
    const form = h('form', { id: 'doc-form' }, text,
      h('div', { class: 'toolbar' },
        h('button', { type: 'submit', id: 'save' }, 'Save'),
        h('button', { type: 'button', class: 'danger', id: 'delete-doc', onclick: () => remove(db, id, doc._rev, out, base) }, 'Delete')),
      out);
    onSubmit(form, out, async () => {
      const edited = parsed(text.value);
      try {
        const res = await call('PUT', docPath(db, id), text.value);
        replace(out, notice('ok', `Saved as ${res.rev}.`));
        setTimeout(() => ctx.route(), 400);
      } catch (err) {
        if (err.status !== 409) throw err;
        const now = await call('GET', docPath(db, id)).catch(() => null);
        replace(out, notice('error', h('strong', {}, 'Conflict (409): '),
          `the document changed since you opened it. You edited revision ${edited._rev ?? '(none)'}; `,
          `the current one is ${now?._rev ?? 'deleted'}. Your text is still in the editor: `,
          h('button', { type: 'button', class: 'link', onclick: () => ctx.route() }, 'load the current version'),
          ' (your edit is lost), or copy your change first.'));
      }
    });
    body = form;
  } else {
    body = notice('info', 'The winning revision of this document is a deletion. Its tree is below; writing it again starts from it.');
  }

  // The revision tree, and any revision's body on a click.
  const shown = h('pre', { class: 'json', id: 'rev-body' });
  const pick = async (rev) => {
    try {
      replace(shown, `${rev}\n`, pretty(await call('GET', `${docPath(db, id)}?rev=${seg(rev)}`, undefined, { as: 'text' })));
    } catch (err) {
      replace(shown, `${rev}: ${err.reason ?? err.message} (its body was dropped by compaction, or it is a deletion)`);
    }
  };
  const docs = leaves.filter((l) => l.ok).map((l) => l.ok);

  return h('section', {},
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, 'Databases'), ' / ', h('a', { href: base }, db), ' / ', id),
    h('h1', {}, id),
    body,
    h('h2', {}, 'Revision tree'),
    h('div', { id: 'revtree' }, drawTree(h, docs, pick)),
    shown,
    doc && attachments(db, id, doc, out, ctx));
}

async function remove(db, id, rev, out, base) {
  if (!confirm(`Delete ${id}?`)) return;
  try {
    await call('DELETE', `${docPath(db, id)}?rev=${seg(rev)}`);
    go(base);
  } catch (err) {
    replace(out, notice('error', err.message));
  }
}

function attachments(db, id, doc, out, ctx) {
  const atts = Object.entries(doc._attachments ?? {});
  const upload = h('form', { class: 'inline', id: 'upload' },
    field('File', h('input', { type: 'file', name: 'file', required: true })),
    field('Name (optional)', h('input', { name: 'name', placeholder: 'the file’s name' })),
    h('button', { type: 'submit' }, 'Upload'));
  onSubmit(upload, out, async (data) => {
    const file = data.get('file');
    const name = data.get('name') || file.name;
    await call('PUT', `${attPath(db, id, name)}?rev=${seg(doc._rev)}`, file,
      { headers: { 'Content-Type': file.type || 'application/octet-stream' } });
    ctx.route();
  });
  return h('div', {},
    h('h2', {}, 'Attachments'),
    atts.length
      ? h('table', { class: 'list', id: 'attachments' },
        h('thead', {}, h('tr', {}, ['Name', 'Type', 'Size', 'Digest', ''].map((t) => h('th', {}, t)))),
        h('tbody', {}, atts.map(([name, a]) => h('tr', {},
          h('td', {}, h('a', { href: attPath(db, id, name), download: name.split('/').pop() }, name)),
          h('td', {}, a.content_type), h('td', {}, bytes(a.length)), h('td', { class: 'mono' }, a.digest),
          h('td', {}, h('button', {
            class: 'danger small',
            onclick: async () => {
              if (!confirm(`Delete the attachment ${name}?`)) return;
              try {
                await call('DELETE', `${attPath(db, id, name)}?rev=${seg(doc._rev)}`);
                ctx.route();
              } catch (err) {
                replace(out, notice('error', err.message));
              }
            },
          }, 'delete'))))))
      : h('p', { class: 'muted' }, 'No attachments.'),
    upload);
}
