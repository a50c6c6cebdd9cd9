// Replication resumes from its checkpoint after the server restarts on the same data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { localDb, remoteDb, startServer } from './helpers.mjs';

test('replication resumes from its checkpoint after a server restart', async () => {
  let server = await startServer();
  const dataDir = server.dataDir;
  try {
    const uuid = (await (await fetch(`${server.url}/`)).json()).uuid;
    const local = localDb('resume');
    await local.bulkDocs(Array.from({ length: 200 }, (_, i) => ({ _id: `d${i}`, i })));
    const first = await local.replicate.to(remoteDb(`${server.url}/resume`));
    assert.equal(first.docs_written, 200);

    await server.stop();
    server = await startServer({ dataDir });
    assert.equal((await (await fetch(`${server.url}/`)).json()).uuid, uuid, 'the uuid survives');

    await local.bulkDocs(Array.from({ length: 50 }, (_, i) => ({ _id: `e${i}`, i })));
    const second = await local.replicate.to(remoteDb(`${server.url}/resume`));
    // Only the new documents are read: the checkpoint was found.
    assert.equal(second.docs_read, 50);
    assert.equal(second.docs_written, 50);
    const info = await remoteDb(`${server.url}/resume`).info();
    assert.equal(info.doc_count, 250);

    // And a pull into a fresh db after the restart gets everything.
    const fresh = localDb('fresh');
    const pull = await fresh.replicate.from(remoteDb(`${server.url}/resume`));
    assert.equal(pull.docs_written, 250);
  } finally {
    await server.stop();
    server.cleanup();
  }
});
