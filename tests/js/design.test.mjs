// Design documents that run, through PouchDB: views queried with db.query compared with a local
// PouchDB answering the same queries over the same documents; validate_doc_update refusing a
// push document by document; filtered replication with a design filter and with a view.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { localDb, remoteDb, startServer } from './helpers.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server.stop();
  server.cleanup();
});

function remote(name) {
  return remoteDb(`${server.url}/${name}`);
}

const SEED = Number(process.env.VIEW_SEED ?? 18);
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DDOC = {
  _id: '_design/app',
  views: {
    byType: { map: "function (doc) { if (doc.type) emit([doc.type, doc.n], doc.n); }", reduce: '_sum' },
    count: { map: "function (doc) { emit(doc.n % 7, null); }", reduce: '_count' },
    stats: { map: "function (doc) { emit(doc.type || null, doc.n); }", reduce: '_stats' },
    js: {
      map: "function (doc) { emit(doc.n % 3, doc.n); }",
      reduce: "function (keys, values, rereduce) { return sum(values); }",
    },
    lib: { util: 'exports.tag = function (doc) { return doc.type + ":" + doc.n; };' },
    tagged: { map: "function (doc) { var u = require('views/lib/util'); if (doc.type) emit(u.tag(doc), 1); }" },
  },
  filters: {
    ofType: 'function (doc, req) { return doc.type === req.query.type; }',
  },
};

test('db.query answers as a local PouchDB does over the same documents', async () => {
  const rand = rng(SEED);
  const types = ['post', 'comment', 'user'];
  const docs = [];
  for (let i = 0; i < 400; i++) {
    const d = { _id: `d${String(i).padStart(4, '0')}`, n: Math.floor(rand() * 50) };
    if (rand() < 0.9) d.type = types[Math.floor(rand() * 3)];
    docs.push(d);
  }
  const local = localDb('views');
  const url = remote('views');
  await local.bulkDocs([DDOC, ...docs]);
  await local.replicate.to(url);
  const queries = [
    ['app/byType', { reduce: false }],
    ['app/byType', { reduce: false, startkey: ['comment'], endkey: ['comment', {}] }],
    ['app/byType', { reduce: false, descending: true, limit: 17, skip: 3 }],
    ['app/byType', { reduce: false, key: ['post', 7] }],
    ['app/byType', { reduce: false, keys: [['user', 3], ['post', 7], ['nope', 1]] }],
    ['app/byType', { reduce: false, startkey: ['post', 10], endkey: ['post', 20], inclusive_end: false }],
    ['app/byType', { reduce: false, include_docs: true, limit: 5 }],
    ['app/byType', {}],
    ['app/byType', { group_level: 1 }],
    ['app/byType', { group: true, limit: 10, skip: 2 }],
    ['app/count', { group: true }],
    ['app/count', {}],
    ['app/stats', { group: true }],
    ['app/js', { group: true }],
    ['app/js', {}],
  ];
  for (const [view, opts] of queries) {
    const want = await local.query(view, opts);
    const got = await url.query(view, opts);
    assert.deepEqual(got.rows, want.rows, `${view} ${JSON.stringify(opts)}`);
    if (opts.reduce === false) {
      assert.equal(got.total_rows, want.total_rows, `${view} ${JSON.stringify(opts)} total_rows`);
    }
  }
  // CommonJS from views.lib (a local PouchDB has no require in map functions: computed here).
  const tagged = await url.query('app/tagged', { reduce: false, limit: 20 });
  const tags = docs
    .filter((d) => d.type)
    .map((d) => ({ id: d._id, key: `${d.type}:${d.n}`, value: 1 }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.id < b.id ? -1 : 1));
  assert.deepEqual(tagged.rows, tags.slice(0, 20));
  // Updated and deleted documents: the index follows.
  const some = (await url.allDocs({ include_docs: true, startkey: 'd', limit: 60 })).rows.map((r) => r.doc);
  const changes = some.map((d, i) => (i % 3 === 0 ? { ...d, _deleted: true } : { ...d, n: d.n + 100 }));
  await url.bulkDocs(changes);
  await local.replicate.from(url);
  for (const [view, opts] of queries.slice(0, 4)) {
    const want = await local.query(view, opts);
    const got = await url.query(view, opts);
    assert.deepEqual(got.rows, want.rows, `after updates: ${view} ${JSON.stringify(opts)}`);
  }
});

test('validate_doc_update refuses a push document by document, and nothing refused is written', async () => {
  const url = remote('guarded');
  await url.put({
    _id: '_design/guard',
    validate_doc_update:
      "function (newDoc, oldDoc, userCtx) { if (newDoc.secret) throw({forbidden: 'no secrets: ' + newDoc._id}); }",
  });
  const local = localDb('guarded');
  const docs = [];
  for (let i = 0; i < 30; i++) docs.push({ _id: `g${i}`, secret: i % 4 === 0, n: i });
  await local.bulkDocs(docs);
  const result = await local.replicate.to(url);
  assert.equal(result.docs_written, 22);
  assert.equal(result.doc_write_failures, 8);
  const failed = (result.errors || []).map((e) => e.id).sort();
  const want = docs.filter((d) => d.secret).map((d) => d._id).sort();
  if (failed.length) assert.deepEqual(failed, want);
  const there = (await url.allDocs()).rows.map((r) => r.id).filter((id) => !id.startsWith('_design/'));
  assert.equal(there.length, 22);
  for (const id of want) {
    await assert.rejects(url.get(id), (e) => e.status === 404, id);
  }
  // A direct write gets CouchDB's 403.
  await assert.rejects(url.put({ _id: 'direct', secret: true }), (e) => e.status === 403 && e.name === 'forbidden');
});

test('filtered replication: a design filter with query_params, and filter=_view', async () => {
  const url = remote('filtered');
  await url.bulkDocs([
    DDOC,
    ...Array.from({ length: 30 }, (_, i) => ({ _id: `f${i}`, n: i, type: ['post', 'comment', 'user'][i % 3] })),
  ]);
  const posts = localDb('posts');
  const r = await posts.replicate.from(url, { filter: 'app/ofType', query_params: { type: 'post' } });
  assert.equal(r.ok, true);
  const ids = (await posts.allDocs()).rows.map((row) => row.id);
  assert.deepEqual(ids, Array.from({ length: 10 }, (_, i) => `f${i * 3}`).sort());
  const viewed = localDb('viewed');
  await viewed.replicate.from(url, { filter: '_view', view: 'app/byType' });
  assert.equal((await viewed.allDocs()).rows.length, 30);
  // A live feed with a filter delivers a matching write.
  const live = localDb('live');
  const rep = live.replicate.from(url, { live: true, filter: 'app/ofType', query_params: { type: 'user' } });
  try {
    await url.put({ _id: 'new-user', type: 'user', n: 99 });
    await url.put({ _id: 'new-post', type: 'post', n: 98 });
    const deadline = Date.now() + 10000;
    while (Date.now() < deadline && !(await live.get('new-user').catch(() => null))) {
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.equal((await live.get('new-user')).n, 99);
    await assert.rejects(live.get('new-post'), (e) => e.status === 404);
  } finally {
    rep.cancel();
  }
});
