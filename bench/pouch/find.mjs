// Mango `_find` on 100,000 documents, couchkv next to pouchdb-server 4.2 (which answers `_find`
// with pouchdb-find), in one run:
//
//   cargo build --release && (cd bench/pouch && npm install && node find.mjs [DOCS])
//
// For each server: DOCS documents `{group: i % 1000, n: i, name}` loaded with `_bulk_docs`; then
// a query matching 100 documents (`group` = one value, limit 100) without an index (a full scan),
// the time to build a json index on `group` (`_index` and the first query after it), and the same
// query through the index. Latency p50/p99 of each, from the client, and the server's CPU.
import { cpuSeconds, pct, startCouchkv, startPouchdbServer } from './servers.mjs';

const DOCS = Number(process.argv[2] ?? 100000);
const SCANS = 10;
const LOOKUPS = 200;

async function call(server, method, path, body) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { ...server.headers, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${server.name}: ${method} ${path} → ${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

async function load(server) {
  await call(server, 'PUT', '/find');
  for (let i = 0; i < DOCS; i += 1000) {
    const docs = [];
    for (let j = i; j < Math.min(DOCS, i + 1000); j++) {
      docs.push({ _id: `doc-${String(j).padStart(7, '0')}`, group: j % 1000, n: j, name: `name ${j}` });
    }
    await call(server, 'POST', '/find/_bulk_docs', { docs });
    if (i % 20000 === 0) process.stderr.write('.');
  }
}

async function queries(server, count) {
  const samples = [];
  const cpu0 = cpuSeconds(server.pid);
  for (let i = 0; i < count; i++) {
    const group = (i * 37) % 1000;
    const t0 = performance.now();
    const r = await call(server, 'POST', '/find/_find', { selector: { group }, limit: 100 });
    samples.push(performance.now() - t0);
    const want = Math.floor(DOCS / 1000) + (group < DOCS % 1000 ? 1 : 0);
    if (r.docs.length !== Math.min(100, want)) throw new Error(`${server.name}: ${r.docs.length} docs for group ${group}`);
  }
  return { samples, cpu: (cpuSeconds(server.pid) - cpu0) / count };
}

const results = [];
for (const start of [startCouchkv, startPouchdbServer]) {
  const server = await start();
  try {
    process.stderr.write(`  ${server.name}: loading ${DOCS}`);
    await load(server);
    process.stderr.write(' scans…');
    const scan = await queries(server, SCANS);
    process.stderr.write(' index…');
    // pouchdb-find builds in `_index`, couchkv in the first query after it: both are timed.
    const t0 = performance.now();
    await call(server, 'POST', '/find/_index', { index: { fields: ['group'] }, ddoc: 'g', name: 'group' });
    await call(server, 'POST', '/find/_find', { selector: { group: 0 }, limit: 1 });
    const build = (performance.now() - t0) / 1000;
    process.stderr.write(' lookups…');
    const indexed = await queries(server, LOOKUPS);
    process.stderr.write(' done\n');
    results.push({ name: server.name, scan, build, indexed });
  } finally {
    server.stop();
  }
}

const f = (x, w = 10, d = 2) => x.toFixed(d).padStart(w);
console.log(`\n_find on ${DOCS} documents, a selector matching 100 (limit 100); latency in ms from the client, server CPU per query in ms`);
console.log(`${'server'.padEnd(32)} ${'scan p50'.padStart(10)} ${'p99'.padStart(10)} ${'CPU'.padStart(10)} ${'build s'.padStart(10)} ${'index p50'.padStart(10)} ${'p99'.padStart(10)} ${'CPU'.padStart(10)}`);
for (const r of results) {
  console.log(`${r.name.padEnd(32)} ${f(pct(r.scan.samples, 50))} ${f(pct(r.scan.samples, 99))} ${f(r.scan.cpu * 1000)} ${f(r.build)} ${f(pct(r.indexed.samples, 50))} ${f(pct(r.indexed.samples, 99))} ${f(r.indexed.cpu * 1000)}`);
}
process.exit(0);
