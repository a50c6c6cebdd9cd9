// The `cloudflare` npm SDK, pointed at couchkv through `baseURL`, drives the KV API unchanged.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Cloudflare from 'cloudflare';
import { startServer, adminHeader } from './helpers.mjs';

let server;
let cf;
const account_id = 'acct-1';
before(async () => {
  server = await startServer();
  const r = await fetch(`${server.url}/_couchkv/tokens`, {
    method: 'POST',
    headers: { Authorization: adminHeader, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'sdk', write: true }),
  });
  const { result } = await r.json();
  cf = new Cloudflare({ apiToken: result.token, baseURL: `${server.url}/client/v4`, maxRetries: 0 });
});
after(async () => {
  await server.stop();
  server.cleanup();
});

test('namespaces, values, metadata, keys and bulk operations through the SDK', async () => {
  const ns = await cf.kv.namespaces.create({ account_id, title: 'sdk-ns' });
  assert.equal(ns.title, 'sdk-ns');
  assert.equal(ns.supports_url_encoding, true);
  const titles = [];
  for await (const n of cf.kv.namespaces.list({ account_id })) titles.push(n.title);
  assert.deepEqual(titles, ['sdk-ns']);
  const renamed = await cf.kv.namespaces.update(ns.id, { account_id, title: 'renamed' });
  assert.equal(renamed.title, 'renamed');
  assert.equal((await cf.kv.namespaces.get(ns.id, { account_id })).title, 'renamed');

  const namespace_id = ns.id;
  const odd = 'hello/wörld key';
  await cf.kv.namespaces.values.update(odd, { account_id, namespace_id, value: 'some value' });
  await cf.kv.namespaces.values.update('with-meta', {
    account_id, namespace_id, value: 'v2', metadata: JSON.stringify({ a: 1 }), expiration_ttl: 120,
  });
  const res = await cf.kv.namespaces.values.get(odd, { account_id, namespace_id });
  assert.equal(await res.text(), 'some value');
  assert.deepEqual(await cf.kv.namespaces.metadata.get('with-meta', { account_id, namespace_id }), { a: 1 });

  const keys = [];
  for await (const k of cf.kv.namespaces.keys.list(namespace_id, { account_id })) keys.push(k);
  assert.deepEqual(keys.map((k) => k.name), [odd, 'with-meta']);
  assert.ok(keys[1].expiration > Date.now() / 1000);
  assert.deepEqual(keys[1].metadata, { a: 1 });

  const bulk = await cf.kv.namespaces.bulkUpdate(namespace_id, {
    account_id,
    body: [
      { key: 'b1', value: 'one' },
      { key: 'b2', value: Buffer.from('two').toString('base64'), base64: true, metadata: { n: 2 } },
    ],
  });
  assert.equal(bulk.successful_key_count, 2);
  const got = await cf.kv.namespaces.bulkGet(namespace_id, { account_id, keys: ['b1', 'b2', 'zz'], withMetadata: true });
  assert.deepEqual(got.values, { b1: { value: 'one', metadata: null }, b2: { value: 'two', metadata: { n: 2 } }, zz: null });
  const deleted = await cf.kv.namespaces.bulkDelete(namespace_id, { account_id, body: ['b1', 'b2'] });
  assert.equal(deleted.successful_key_count, 2);
  await cf.kv.namespaces.values.delete(odd, { account_id, namespace_id });
  await assert.rejects(
    cf.kv.namespaces.values.get(odd, { account_id, namespace_id }),
    (e) => e.status === 404,
  );
  // Validation errors come back as API errors with Cloudflare's shape.
  await assert.rejects(
    cf.kv.namespaces.values.update('k', { account_id, namespace_id, value: 'v', expiration_ttl: 10 }),
    (e) => e.status === 400 && /Expiration TTL must be at least 60/.test(e.message),
  );
  await cf.kv.namespaces.delete(ns.id, { account_id });
  await assert.rejects(cf.kv.namespaces.get(ns.id, { account_id }), (e) => e.status === 404);
});
