// A JavaScript map/reduce view on 100,000 documents, couchkv next to pouchdb-server 4.2, in
// one run:
//
//   cargo build --release && (cd bench/pouch && npm install && node views.mjs [DOCS])
//
// For each server: DOCS documents `{type, n, tags}` loaded with `_bulk_docs`, a design document
// with a view emitting `[type, n]` (reduce `_count`); then the time of the first query (the
// index built from nothing), of the first query after 1,000 more writes (the incremental
// update), and the latency p50/p99 of queries of 20 rows (`reduce=false`, a key range) and of
// grouped reductions (`group_level=1`), with the server's CPU per query.
import { cpuSeconds, pct, startCouchkv, startPouchdbServer } from './servers.mjs';

const DOCS = Number(process.argv[2] ?? 100000);
const QUERIES = 200;
const TYPES = ['post', 'comment', 'user', 'page', 'tag'];

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

function doc(j) {
  return { _id: `doc-${String(j).padStart(7, '0')}`, type: TYPES[j % 5], n: j, tags: [`t${j % 13}`] };
}

async function load(server) {
  await call(server, 'PUT', '/views');
  for (let i = 0; i < DOCS; i += 1000) {
    const docs = [];
    for (let j = i; j < Math.min(DOCS, i + 1000); j++) docs.push(doc(j));
    await call(server, 'POST', '/views/_bulk_docs', { docs });
    if (i % 20000 === 0) process.stderr.write('.');
  }
  await call(server, 'PUT', '/views/_design/app', {
    views: {
      byType: { map: 'function (doc) { if (doc.type) emit([doc.type, doc.n], doc.tags.length); }', reduce: '_count' },
    },
  });
}

async function queries(server, path) {
  const samples = [];
  const cpu0 = cpuSeconds(server.pid);
  for (let i = 0; i < QUERIES; i++) {
    const t0 = performance.now();
    const r = await call(server, 'GET', path(i));
    samples.push(performance.now() - t0);
    if (!r.rows || r.rows.length === 0) throw new Error(`${server.name}: no rows for ${path(i)}`);
  }
  return { samples, cpu: (cpuSeconds(server.pid) - cpu0) / QUERIES };
}

const view = '/views/_design/app/_view/byType';
const range = (i) => {
  const t = TYPES[i % 5];
  const from = (i * 997) % DOCS;
  return `${view}?reduce=false&limit=20&startkey=${encodeURIComponent(JSON.stringify([t, from]))}&endkey=${encodeURIComponent(JSON.stringify([t, {}]))}`;
};
const grouped = () => `${view}?group_level=1`;

const results = [];
for (const start of [startCouchkv, startPouchdbServer]) {
  const server = await start();
  try {
    process.stderr.write(`  ${server.name}: loading ${DOCS}`);
    await load(server);
    process.stderr.write(' build…');
    const t0 = performance.now();
    const first = await call(server, 'GET', `${view}?reduce=false&limit=1`);
    const build = (performance.now() - t0) / 1000;
    if (first.total_rows !== DOCS) throw new Error(`${server.name}: total_rows ${first.total_rows}`);
    process.stderr.write(' 1,000 writes…');
    const docs = [];
    for (let j = DOCS; j < DOCS + 1000; j++) docs.push(doc(j));
    await call(server, 'POST', '/views/_bulk_docs', { docs });
    const t1 = performance.now();
    const after = await call(server, 'GET', `${view}?reduce=false&limit=1`);
    const incremental = (performance.now() - t1) * 1;
    if (after.total_rows !== DOCS + 1000) throw new Error(`${server.name}: total_rows ${after.total_rows}`);
    process.stderr.write(' queries…');
    const rows = await queries(server, range);
    const reduced = await queries(server, grouped);
    process.stderr.write(' done\n');
    results.push({ name: server.name, build, incremental, rows, reduced });
  } finally {
    server.stop();
  }
}

const f = (x, w = 10, d = 2) => x.toFixed(d).padStart(w);
console.log(`\nA map/reduce view on ${DOCS} documents: build (s), update after 1,000 writes (ms); latency in ms from the client, server CPU per query in ms`);
console.log(`${'server'.padEnd(32)} ${'build s'.padStart(10)} ${'+1000 ms'.padStart(10)} ${'rows p50'.padStart(10)} ${'p99'.padStart(10)} ${'CPU'.padStart(10)} ${'group p50'.padStart(10)} ${'p99'.padStart(10)} ${'CPU'.padStart(10)}`);
for (const r of results) {
  console.log(`${r.name.padEnd(32)} ${f(r.build)} ${f(r.incremental)} ${f(pct(r.rows.samples, 50))} ${f(pct(r.rows.samples, 99))} ${f(r.rows.cpu * 1000)} ${f(pct(r.reduced.samples, 50))} ${f(pct(r.reduced.samples, 99))} ${f(r.reduced.cpu * 1000)}`);
}
process.exit(0);
