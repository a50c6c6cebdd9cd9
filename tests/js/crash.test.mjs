// kill -9 during a PouchDB push (issue 8's crash test): the server on redb is killed at a
// different moment each round, restarted on the same data, and then every document it had
// acknowledged in a `_bulk_docs` answer must be there with the acknowledged revision, no change
// sequence may appear twice, and the replication, restarted, must complete.
// COUCHKV_CRASH_ROUNDS (default 20) and COUCHKV_CRASH_DOCS (default 5000) size it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import PouchDB from 'pouchdb';
import { localDb, startServer, ADMIN, adminCall } from './helpers.mjs';

const ROUNDS = Number(process.env.COUCHKV_CRASH_ROUNDS ?? 20);
const DOCS = Number(process.env.COUCHKV_CRASH_DOCS ?? 5000);

/** A remote PouchDB whose acknowledged `_bulk_docs` writes are recorded in `acked` (id → rev). */
function recordingRemote(url, acked) {
  return new PouchDB(url, {
    auth: ADMIN,
    fetch: async (input, init) => {
      const res = await PouchDB.fetch(input, init);
      // Replication writes with `new_edits: false`, answered `201 []`: a success acknowledges
      // every document of the request, with the revision it carried.
      if (String(input).includes('/_bulk_docs') && res.status === 201) {
        const sent = JSON.parse(init.body);
        for (const doc of sent.docs) acked.set(doc._id, doc._rev);
      }
      return res;
    },
  });
}

const call = async (...args) => (await adminCall(...args)).body;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test(`kill -9 during a PouchDB push, ${ROUNDS} rounds`, { timeout: 600000 }, async () => {
  const docs = Array.from({ length: DOCS }, (_, i) => ({ _id: `doc-${String(i).padStart(5, '0')}`, i, text: 'x'.repeat(40) }));
  // How long a whole push takes here, so the kill moments spread over it.
  let full;
  {
    const server = await startServer();
    const local = localDb('calibrate');
    await local.bulkDocs(docs);
    const t0 = Date.now();
    await local.replicate.to(recordingRemote(`${server.url}/calib`, new Map()));
    full = Date.now() - t0;
    await server.stop();
    server.cleanup();
  }
  let checked = 0;
  let rounds = 0;
  for (let r = 0; r < ROUNDS; r++) {
    let server = await startServer();
    const { dataDir } = server;
    try {
      const acked = new Map();
      const local = localDb(`crash${r}`);
      await local.bulkDocs(docs);
      const push = local.replicate.to(recordingRemote(`${server.url}/crash`, acked)).catch(() => null);
      // From the first batch to just past the end, a different moment each round.
      await sleep(Math.round(((r + 0.5) / ROUNDS) * full * 1.1));
      await server.kill();
      await push;
      server = await startServer({ dataDir });

      // Every acknowledged document, with the acknowledged revision.
      const ids = [...acked.keys()];
      for (let i = 0; i < ids.length; i += 500) {
        const keys = ids.slice(i, i + 500);
        const all = await call(server, 'POST', '/crash/_all_docs', { keys });
        for (const row of all.rows) {
          assert.ok(!row.error, `round ${r}: acknowledged ${row.key} is missing`);
          assert.equal(row.value.rev, acked.get(row.key), `round ${r}: ${row.key}`);
        }
      }
      checked += ids.length;
      // No sequence twice, one change per document, counters agreeing with the feed.
      const info = await call(server, 'GET', '/crash');
      if (!info.error) {
        const changes = await call(server, 'GET', '/crash/_changes');
        const seqs = changes.results.map((c) => String(c.seq));
        assert.equal(new Set(seqs).size, seqs.length, `round ${r}: a repeated sequence`);
        assert.equal(new Set(changes.results.map((c) => c.id)).size, seqs.length);
        assert.equal(info.doc_count, seqs.length, `round ${r}: doc_count vs changes`);
        assert.equal(String(info.update_seq), String(changes.last_seq));
      }
      // The replication, restarted, completes.
      const again = await local.replicate.to(recordingRemote(`${server.url}/crash`, new Map()));
      assert.equal(again.ok, true);
      const after = await call(server, 'GET', '/crash');
      assert.equal(after.doc_count, DOCS, `round ${r}: everything after the resumed push`);
      rounds += 1;
    } finally {
      await server.kill();
      server.cleanup();
    }
  }
  console.log(`crash test: ${rounds}/${ROUNDS} rounds passed, ${checked} acknowledged documents checked (a push took ${full} ms)`);
  assert.equal(rounds, ROUNDS);
  assert.ok(checked > 0, 'some documents were acknowledged before a kill');
});

// Replication checkpoints (`_local` documents) are committed without waiting for the disk: a
// crash right after a replication may lose the last one. Replication then resumes from an
// earlier checkpoint (or the start), re-sends what the server already has, and ends with every
// document exactly once at its revision.
test('kill -9 right after a replication: the checkpoint may be lost, replication resumes correctly', async () => {
  let server = await startServer();
  const { dataDir } = server;
  try {
    const docs = Array.from({ length: 300 }, (_, i) => ({ _id: `c-${String(i).padStart(4, '0')}`, i }));
    const local = localDb('checkpoint');
    await local.bulkDocs(docs);
    // The checkpoint document's path and the revision of its last write, as the replicator
    // writes it (after each batch, the same document).
    let checkpoint;
    let lastRev;
    const remote = new PouchDB(`${server.url}/ckpt`, {
      auth: ADMIN,
      fetch: async (input, init) => {
        const res = await PouchDB.fetch(input, init);
        if (init?.method === 'PUT' && String(input).includes('/_local/') && res.ok) {
          checkpoint = new URL(String(input)).pathname;
          lastRev = (await res.clone().json()).rev;
        }
        return res;
      },
    });
    const first = await local.replicate.to(remote);
    assert.equal(first.docs_written, 300);
    assert.ok(checkpoint, 'the replicator wrote a checkpoint');
    await server.kill();
    server = await startServer({ dataDir });
    const after = await adminCall(server, 'GET', checkpoint);
    const kept = after.status === 200 ? after.body._rev : null;
    console.log(`the last checkpoint (${lastRev}) ${kept === lastRev ? 'survived' : `was lost in`} the crash; the server has ${kept ?? 'none'}`);
    assert.ok([200, 404].includes(after.status));
    const again = await local.replicate.to(recordingRemote(`${server.url}/ckpt`, new Map()));
    assert.equal(again.ok, true);
    assert.equal(again.doc_write_failures, 0);
    const all = await call(server, 'GET', '/ckpt/_all_docs?include_docs=true&conflicts=true');
    assert.equal(all.rows.length, 300);
    const localRevs = new Map((await local.allDocs()).rows.map((r) => [r.id, r.value.rev]));
    for (const row of all.rows) {
      assert.equal(row.value.rev, localRevs.get(row.id), row.id);
      assert.equal(row.doc._conflicts, undefined, row.id);
    }
    const info = await call(server, 'GET', '/ckpt');
    assert.equal(info.doc_count, 300);
    // And the checkpoint written now is there after a clean stop and start.
    await server.stop();
    server = await startServer({ dataDir });
    assert.equal((await adminCall(server, 'GET', checkpoint)).status, 200);
  } finally {
    await server.stop();
    server.cleanup();
  }
});
