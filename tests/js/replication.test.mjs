// PouchDB 9 from npm against a running couchkv: push, pull, live sync, conflicts, restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import { localDb, remoteDb, startServer, eventually, snapshot, adminHeader } from './helpers.mjs';

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

/** 1,000 documents: plain ones, some with attachments, some deleted, some with conflicts. */
async function fill(db) {
  const docs = [];
  for (let i = 0; i < 1000; i++) {
    const doc = { _id: `doc-${String(i).padStart(4, '0')}`, n: i, tags: ['a', 'b'], nested: { i } };
    if (i % 10 === 0) {
      doc._attachments = {
        'note.txt': { content_type: 'text/plain', data: Buffer.from(`note ${i}`).toString('base64') },
        'bytes.bin': { content_type: 'application/octet-stream', data: Buffer.from([0, 1, 2, 255, i % 256]).toString('base64') },
      };
    }
    docs.push(doc);
  }
  const results = await db.bulkDocs(docs);
  assert.ok(results.every((r) => r.ok));
  // Delete every 7th.
  const toDelete = results.filter((_, i) => i % 7 === 3).map((r) => ({ _id: r.id, _rev: r.rev, _deleted: true }));
  await db.bulkDocs(toDelete);
  // Conflicting branches on every 13th, made as replication makes them.
  const conflicts = [];
  for (let i = 5; i < 1000; i += 13) {
    const id = `doc-${String(i).padStart(4, '0')}`;
    const cur = await db.get(id, { revs: true }).catch(() => null);
    if (!cur) continue;
    const [pos, hash] = cur._rev.split('-');
    conflicts.push({
      _id: id,
      _rev: `${Number(pos) + 1}-${'b'.repeat(32)}`,
      _revisions: { start: Number(pos) + 1, ids: ['b'.repeat(32), hash] },
      branch: 'b',
    });
    conflicts.push({
      _id: id,
      _rev: `${Number(pos) + 1}-${'c'.repeat(32)}`,
      _revisions: { start: Number(pos) + 1, ids: ['c'.repeat(32), hash] },
      branch: 'c',
    });
  }
  await db.bulkDocs(conflicts, { new_edits: false });
}

test('push 1,000 docs, pull them into a fresh db, and every doc, tree and attachment matches', async () => {
  const source = localDb('source');
  await fill(source);
  const push = await source.replicate.to(remote('push-pull'));
  assert.equal(push.ok, true);
  assert.equal(push.doc_write_failures, 0);

  const info = await remote('push-pull').info();
  const localInfo = await source.info();
  assert.equal(info.doc_count, localInfo.doc_count);

  const target = localDb('target');
  const pull = await target.replicate.from(remote('push-pull'));
  assert.equal(pull.ok, true);
  assert.equal(pull.doc_write_failures, 0);

  const want = await snapshot(source);
  const got = await snapshot(target);
  assert.equal(Object.keys(got).length, 1000);
  assert.deepEqual(got, want);

  // Spot checks of what the snapshot compared.
  const conflicted = await target.get('doc-0005', { conflicts: true });
  assert.equal(conflicted._conflicts.length, 1);
  await assert.rejects(target.get('doc-0003'), (e) => e.status === 404);
  const att = await target.getAttachment('doc-0020', 'bytes.bin');
  assert.deepEqual([...att], [0, 1, 2, 255, 20]);
});

test('two-way live sync between two local dbs through couchkv', async () => {
  const a = localDb('a');
  const b = localDb('b');
  const url = remote('live');
  const syncA = a.sync(url, { live: true, retry: true });
  const syncB = b.sync(url, { live: true, retry: true });
  try {
    await a.put({ _id: 'from-a', v: 1 });
    await b.put({ _id: 'from-b', v: 2 });
    await eventually(async () => (await b.get('from-a').catch(() => null))?.v === 1, 15000, 'a → b');
    await eventually(async () => (await a.get('from-b').catch(() => null))?.v === 2, 15000, 'b → a');
    // An edit travels back the other way.
    const doc = await b.get('from-a');
    await b.put({ ...doc, v: 3 });
    await eventually(async () => (await a.get('from-a')).v === 3, 15000, 'edit b → a');
  } finally {
    syncA.cancel();
    syncB.cancel();
  }
});

test('a conflict is seen identically on both sides', async () => {
  const a = localDb('ca');
  const b = localDb('cb');
  const url = remote('conflicts');
  await a.put({ _id: 'shared', v: 0 });
  await a.replicate.to(url);
  await b.replicate.from(url);
  const base = await a.get('shared');
  await a.put({ ...base, v: 'from a' });
  await b.put({ ...base, v: 'from b' });
  await a.replicate.to(url);
  await b.replicate.to(url);
  await a.replicate.from(url);
  await b.replicate.from(url);
  const da = await a.get('shared', { conflicts: true });
  const db = await b.get('shared', { conflicts: true });
  const server = await url.get('shared', { conflicts: true });
  assert.equal(da._rev, db._rev);
  assert.equal(da._rev, server._rev);
  assert.deepEqual(da._conflicts, db._conflicts);
  assert.deepEqual(server._conflicts, da._conflicts);
  assert.equal(da._conflicts.length, 1);
  assert.equal(da.v, db.v);
});

test('an EventSource client receives _changes events as they are written', async () => {
  const url = remote('events');
  await url.put({ _id: 'before', v: 1 });
  const es = new EventSource(`${server.url}/events/_changes?feed=eventsource&since=0`, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, Authorization: adminHeader } }),
  });
  const seen = [];
  es.onmessage = (ev) => seen.push({ id: ev.lastEventId, data: JSON.parse(ev.data) });
  try {
    await eventually(() => seen.some((e) => e.data.id === 'before'), 10000, 'existing change');
    await url.put({ _id: 'after', v: 2 });
    const ev = await eventually(() => seen.find((e) => e.data.id === 'after'), 10000, 'new change');
    assert.equal(String(ev.data.seq), ev.id);
    assert.ok(ev.data.changes[0].rev.startsWith('1-'));
  } finally {
    es.close();
  }
});
