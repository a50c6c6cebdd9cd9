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
