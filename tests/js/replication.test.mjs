// PouchDB 9 from npm against a running couchkv: push, pull, live sync, conflicts, restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import { localDb, remoteDb, startServer, eventually, snapshot, adminHeader, fill } from './helpers.mjs';

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
