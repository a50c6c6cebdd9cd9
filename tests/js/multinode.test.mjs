// Two couchkv nodes on one PostgreSQL (the README's "Running several nodes"): PouchDB pushes to
// node A while an EventSource subscriber on node B receives every change; two writers, one per
// node, hammer the same documents and no update is lost and no sequence number repeats.
// Needs COUCHKV_TEST_POSTGRES (scripts/test.sh starts a throwaway cluster and sets it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import { localDb, remoteDb, startServer, eventually, adminHeader, adminCall } from './helpers.mjs';

const PG = process.env.COUCHKV_TEST_POSTGRES;
if (!PG && process.env.COUCHKV_REQUIRE_POSTGRES) {
  throw new Error('COUCHKV_TEST_POSTGRES is not set: run the tests through scripts/test.sh');
}

let a;
let b;
before(async () => {
  if (!PG) return;
  const schema = `mn_${process.pid}_${Date.now()}`;
  const args = ['--store', PG, '--postgres-schema', schema, '--postgres-pool', '8'];
  a = await startServer({ args });
  b = await startServer({ args });
});
after(async () => {
  for (const s of [a, b]) {
    if (s) { await s.stop(); s.cleanup(); }
  }
});

const call = adminCall;

test('PouchDB pushes to node A; an EventSource on node B sees every change', { skip: !PG }, async () => {
  assert.equal((await call(a, 'PUT', '/pushed')).status, 201);
  const es = new EventSource(`${b.url}/pushed/_changes?feed=eventsource&since=0`, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, Authorization: adminHeader } }),
  });
  const seen = new Map();
  const seqs = [];
  es.onmessage = (ev) => {
    const change = JSON.parse(ev.data);
    seen.set(change.id, change.changes[0].rev);
    seqs.push(String(change.seq));
  };
  try {
    const local = localDb('push');
    const docs = Array.from({ length: 500 }, (_, i) => ({ _id: `doc-${String(i).padStart(4, '0')}`, i }));
    await local.bulkDocs(docs);
    const result = await local.replicate.to(remoteDb(`${a.url}/pushed`));
    assert.equal(result.docs_written, 500);
    await eventually(() => seen.size === 500, 30000, `500 changes on node B (saw ${seen.size})`);
    const local_ = await local.allDocs();
    for (const row of local_.rows) assert.equal(seen.get(row.id), row.value.rev, row.id);
    assert.equal(new Set(seqs).size, seqs.length, 'no sequence delivered twice');
    const infoA = (await call(a, 'GET', '/pushed')).body;
    const infoB = (await call(b, 'GET', '/pushed')).body;
    assert.equal(infoA.doc_count, 500);
    assert.deepEqual(infoB.update_seq, infoA.update_seq);
  } finally {
    es.close();
  }
});

test('two writers on two nodes: no lost update, no repeated sequence', { skip: !PG }, async () => {
  assert.equal((await call(a, 'PUT', '/contended')).status, 201);
  const DOCS = 5;
  const ROUNDS = 25;
  for (let d = 0; d < DOCS; d++) {
    assert.equal((await call(a, 'PUT', `/contended/d${d}`, { n: 0 })).status, 201);
  }
  let conflicts = 0;
  // Each writer increments every document ROUNDS times through its own node, re-reading
  // after each 409 (CouchDB's optimistic concurrency).
  const writer = async (node) => {
    for (let r = 0; r < ROUNDS; r++) {
      for (let d = 0; d < DOCS; d++) {
        for (;;) {
          const cur = (await call(node, 'GET', `/contended/d${d}`)).body;
          const put = await call(node, 'PUT', `/contended/d${d}`, { _rev: cur._rev, n: cur.n + 1 });
          if (put.status === 201) break;
          assert.equal(put.status, 409, JSON.stringify(put.body));
          assert.equal(put.body.error, 'conflict');
          conflicts += 1;
        }
      }
    }
  };
  await Promise.all([writer(a), writer(b), writer(a), writer(b)]);
  for (let d = 0; d < DOCS; d++) {
    const doc = (await call(b, 'GET', `/contended/d${d}`)).body;
    assert.equal(doc.n, 4 * ROUNDS, `d${d}: every increment landed`);
    assert.ok(doc._rev.startsWith(`${4 * ROUNDS + 1}-`), doc._rev);
  }
  // One sequence per successful write: a repeated sequence would leave update_seq short.
  const info = (await call(a, 'GET', '/contended')).body;
  assert.equal(info.update_seq, DOCS + DOCS * 4 * ROUNDS);
  const changes = (await call(b, 'GET', '/contended/_changes')).body;
  const seqs = changes.results.map((c) => c.seq);
  assert.equal(new Set(seqs).size, DOCS);
  assert.ok(conflicts > 0, 'the writers really raced');
});

test('databases made, deleted and made again on either node stay apart', { skip: !PG }, async () => {
  // Both nodes create databases at once: each gets its own storage.
  const names = Array.from({ length: 16 }, (_, i) => `many${i}`);
  const made = await Promise.all(names.map((n, i) => call(i % 2 ? a : b, 'PUT', `/${n}`)));
  for (const r of made) assert.equal(r.status, 201, JSON.stringify(r.body));
  await Promise.all(names.map((n, i) => call(i % 2 ? b : a, 'PUT', `/${n}/only`, { db: n })));
  for (const n of names) {
    const all = (await call(a, 'GET', `/${n}/_all_docs?include_docs=true`)).body;
    assert.deepEqual(all.rows.map((r) => r.doc.db), [n], `${n} holds only its own document`);
  }
  // Node A has `gone` loaded; node B deletes it and makes it again: A sees the new, empty one.
  assert.equal((await call(a, 'PUT', '/gone')).status, 201);
  assert.equal((await call(a, 'PUT', '/gone/old', { v: 1 })).status, 201);
  assert.equal((await call(b, 'DELETE', '/gone')).status, 200);
  assert.equal((await call(a, 'GET', '/gone/old')).status, 404);
  assert.equal((await call(b, 'PUT', '/gone')).status, 201);
  assert.equal((await call(a, 'GET', '/gone/old')).status, 404);
  assert.equal((await call(a, 'GET', '/gone')).body.doc_count, 0);
  assert.equal((await call(a, 'PUT', '/gone/new', { v: 2 })).status, 201);
  assert.equal((await call(b, 'GET', '/gone/new')).body.v, 2);
});
