// Data comes back exactly as it was sent: 2,000 random doubles, nested objects with their keys
// out of order and attachments in a chosen order go through PouchDB push and pull, and the
// JSON text is compared byte for byte (the server's own answer and the pulled copy).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { localDb, remoteDb, startServer, adminHeader } from './helpers.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server.stop();
  server.cleanup();
});

/** A seeded generator, so a failure can be replayed. */
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The document's own fields as JSON text (no `_id`, `_rev`, `_attachments`, …). */
function bodyText(doc) {
  const out = {};
  for (const [k, v] of Object.entries(doc)) {
    if (!k.startsWith('_')) out[k] = v;
  }
  return JSON.stringify(out);
}

test('2,000 doubles, unsorted keys and ordered attachments come back byte for byte', async () => {
  const random = rng(20261202);
  const double = () => (random() * 2 - 1) * 10 ** Math.floor(random() * 7 - 3);
  const docs = [];
  for (let d = 0; d < 100; d++) {
    // Keys deliberately not in sorted order, nested the same way (no integer-like keys: a
    // JavaScript object would move those first itself).
    const doc = { _id: `doc-${d}`, zeta: double(), alpha: double(), mid: { z: double(), a: [double(), double()], m: { y: double(), b: double() } } };
    for (let i = 0; i < 14; i++) doc[`k${(i * 5) % 14}x`] = double();
    doc.last = [double(), { q: double(), c: double() }];
    if (d % 5 === 0) {
      doc._attachments = {
        'z.bin': { content_type: 'application/octet-stream', data: Buffer.from([d, 0, 255, 7]).toString('base64') },
        'a.txt': { content_type: 'text/plain', data: Buffer.from(`note ${d}`).toString('base64') },
        'm.json': { content_type: 'application/json', data: Buffer.from(`{"d":${d}}`).toString('base64') },
      };
    }
    docs.push(doc);
  }
  const doubles = docs.reduce((n, doc) => n + JSON.stringify(doc).match(/-?\d+\.\d+(e-?\d+)?/g).length, 0);
  assert.ok(doubles >= 2000, `${doubles} doubles`);

  const src = localDb('fidelity-src');
  await src.bulkDocs(docs);
  const remote = remoteDb(`${server.url}/fidelity`);
  await src.replicate.to(remote);

  for (const doc of docs) {
    // The server's own answer, as text.
    const res = await fetch(`${server.url}/fidelity/${doc._id}`, { headers: { Authorization: adminHeader } });
    assert.equal(res.status, 200);
    const served = JSON.parse(await res.text());
    assert.equal(bodyText(served), bodyText(doc), `${doc._id} as served`);
    if (doc._attachments) {
      assert.deepEqual(Object.keys(served._attachments), ['z.bin', 'a.txt', 'm.json']);
    }
  }

  const dst = localDb('fidelity-dst');
  await dst.replicate.from(remote);
  for (const doc of docs) {
    const pulled = await dst.get(doc._id, { attachments: true });
    assert.equal(bodyText(pulled), bodyText(doc), `${doc._id} pulled`);
    if (doc._attachments) {
      assert.deepEqual(Object.keys(pulled._attachments), Object.keys(doc._attachments));
      for (const [name, att] of Object.entries(doc._attachments)) {
        assert.equal(pulled._attachments[name].data, att.data, `${doc._id}/${name}`);
        assert.equal(pulled._attachments[name].content_type, att.content_type);
      }
    }
  }
});
