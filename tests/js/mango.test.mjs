// Mango against PouchDB's own: the same random documents and random queries answered by a local
// PouchDB with pouchdb-find and by couchkv's `_find`, without and with indexes; selector-filtered
// changes and live replication with a selector.
//
// Where pouchdb-find is known to differ from CouchDB (README, "Mango"), the generator stays out
// of the way: a condition on a field a document lacks is false in CouchDB and true in PouchDB
// for `$ne`/`$not`/`$nor`, and PouchDB's `$in`/`$nin` never match null. So negated and
// `$in`/`$nin` conditions only name fields every document has, with no nulls; strings are
// lowercase (PouchDB orders strings by UTF-16 code unit, CouchDB by ICU: they agree there).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import PouchDB from 'pouchdb';
import find from 'pouchdb-find';
import { localDb, remoteDb, startServer, adminCall, eventually } from './helpers.mjs';

PouchDB.plugin(find);

const DOCS = 2000;
const QUERIES = 500;

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server.stop();
  server.cleanup();
});

// A seeded generator: a failure names the seed, and the same seed gives the same run.
const SEED = Number(process.env.MANGO_SEED ?? 20261202);
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(SEED);
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
const pick = (xs) => xs[int(0, xs.length - 1)];
const word = () => Array.from({ length: int(0, 3) }, () => pick('abcd')).join('');
const scalar = () => pick([() => int(-20, 20), () => int(-20, 20) + 0.5, word, () => rand() < 0.5])();

function randomDoc(i) {
  const doc = {
    _id: `d${String(i).padStart(5, '0')}`,
    n: int(-20, 20),
    s: word(),
    b: rand() < 0.5,
    // Any type, for collation across types.
    v: pick([scalar, () => [int(0, 3), word()], () => ({ k: int(0, 3) })])(),
    arr: Array.from({ length: int(0, 4) }, () => pick([() => int(0, 5), () => pick(['a', 'b', 'c'])])()),
    objs: Array.from({ length: int(0, 3) }, () => ({ k: int(0, 5), t: word() })),
    o: { x: int(0, 9), y: word() },
  };
  if (rand() < 0.5) doc.opt = int(0, 9); // sometimes missing
  if (rand() < 0.2) doc.z = null;
  return doc;
}

// Fields every document has (no nulls): safe under negation and $in/$nin.
const PRESENT = ['n', 's', 'b', 'o.x', 'o.y'];

function cond(field) {
  const numeric = ['n', 'o.x', 'opt'].includes(field);
  const value = () => (numeric ? int(-20, 20) : field === 'b' ? rand() < 0.5 : field === 'v' ? scalar() : word());
  return pick([
    // A bare value is `$eq`; pouchdb-find ignores a bare falsy one ('', 0, false) in places.
    () => {
      const v = value();
      return v ? v : { $eq: v };
    },
    () => ({ $eq: value() }),
    () => ({ $gt: value() }),
    () => ({ $gte: value() }),
    () => ({ $lt: value() }),
    () => ({ $lte: value(), $gt: value() }),
    () => ({ $exists: rand() < 0.7 }),
    () => ({ $type: pick(['number', 'string', 'boolean', 'array', 'object', 'null']) }),
    ...(PRESENT.includes(field) ? [
      () => ({ $ne: value() }),
      () => ({ $in: [value(), value()] }),
      () => ({ $nin: [value(), value()] }),
    ] : []),
    ...(numeric ? [() => ({ $mod: [int(2, 4), int(0, 1)] })] : []),
    ...(field === 's' || field === 'o.y' ? [() => ({ $regex: pick(['^a', 'b$', '[cd]', '^$']) })] : []),
  ])();
}

function arrayCond(scope) {
  const options = [
    () => ({ arr: { $size: int(0, 3) } }),
    () => ({ arr: { $all: [pick(['a', 'b', 1, 2])] } }),
    () => ({ arr: { $elemMatch: { $gt: int(0, 4) } } }),
    () => ({ arr: { $allMatch: { $type: 'number' } } }),
    () => ({ arr: { $in: [int(0, 5), 'a'] } }),
    () => ({ objs: { $elemMatch: { k: { $gte: int(0, 5) }, t: { $gt: word() } } } }),
    () => ({ objs: { $size: int(0, 2) } }),
  ];
  const sel = pick(options)();
  const key = Object.keys(sel)[0];
  if (scope.has(key)) return null;
  scope.add(key);
  return sel;
}

// pouchdb-find merges the conditions of a conjunction by field, keeping one condition per
// operator (a second `$eq` or `$in` on a field replaces the first, `$gt`s compare with
// JavaScript's `>`), one `$or`/`$nor`/`$not` per conjunction, and mixes up a field named both
// beside and inside an `$or`: so in one query (`scope`) each field and each of those appears
// once.
function leaf(negatable, scope) {
  const fields = negatable ? PRESENT : [...PRESENT, 'v', 'opt', 'z'];
  if (!negatable && rand() < 0.2) {
    const a = arrayCond(scope);
    if (a) return a;
  }
  for (let tries = 0; tries < 10; tries++) {
    const f = pick(fields);
    if (scope.has(f)) continue;
    scope.add(f);
    return { [f]: cond(f) };
  }
  return null;
}

function selector(depth = 0, negatable = false, scope = new Set()) {
  const combine = (key, make) => {
    if (scope.has(key)) return leaf(negatable, scope);
    scope.add(key);
    return make();
  };
  const parts = (n, neg) => Array.from({ length: n }, () => selector(depth + 1, neg, scope)).filter(Boolean);
  const sel = depth >= 2 ? leaf(negatable, scope) : pick([
    () => leaf(negatable, scope),
    () => ({ ...leaf(negatable, scope), ...leaf(negatable, scope) }),
    // pouchdb-find throws on an `$and` nested in an `$and`: one level of them.
    () => combine('$and', () => ({ $and: [selector(2, negatable, scope), selector(2, negatable, scope)].filter(Boolean) })),
    () => combine('$or', () => ({ $or: parts(2, negatable) })),
    () => combine('$nor', () => ({ $nor: parts(2, true) })),
    // pouchdb-find cannot run `$not` over `$and`/`$or` (it throws): a field's conditions.
    () => combine('$not', () => ({ $not: selector(2, true, scope) })),
  ])();
  return sel && Object.keys(sel).length > 0 ? sel : { n: { $gt: -100 } };
}

/** A random query; with `sortFields`, sorted on one of them (which indexes cover) and paged. */
function query(sortFields) {
  const q = {};
  if (sortFields) {
    const f = pick(sortFields);
    const dir = rand() < 0.5 ? 'asc' : 'desc';
    q.sort = [{ [f]: dir }];
    // pouchdb-find sorts only on fields the selector names; the rest leaves that field alone.
    q.selector = { ...selector(0, false, new Set([f, '$and'])), [f]: { $gte: null } };
    q.limit = int(1, 40);
    if (rand() < 0.5) q.skip = int(0, 10);
  } else {
    q.selector = selector();
  }
  if (rand() < 0.3) q.fields = ['_id', pick(['n', 's', 'o.x', 'v'])];
  return q;
}

async function remoteFind(db, q) {
  const { status, body } = await adminCall(server, 'POST', `/${db}/_find`, q);
  return { status, body };
}

function byId(docs) {
  return [...docs].sort((a, b) => (a._id < b._id ? -1 : a._id > b._id ? 1 : 0));
}

test('_find answers as pouchdb-find does, on 2,000 random documents and 500 random queries, without and with indexes', async () => {
  const name = `mango-${SEED}`;
  const local = localDb('mango');
  const remote = remoteDb(`${server.url}/${name}`);
  const docs = Array.from({ length: DOCS }, (_, i) => randomDoc(i));
  assert.ok((await local.bulkDocs(docs)).every((r) => r.ok));
  // The same documents with the same revisions on both sides.
  await local.replicate.to(remote);

  let compared = 0;
  let nonEmpty = 0;
  const check = async (q, label) => {
    const mine = await remoteFind(name, q);
    let theirs;
    try {
      // pouchdb-find rewrites the query object it is given.
      theirs = await local.find(structuredClone(q));
    } catch (e) {
      assert.fail(`${label}: pouchdb-find refused ${JSON.stringify(q)}: ${e.message}`);
    }
    assert.equal(mine.status, 200, `${label}: ${JSON.stringify(q)} → ${JSON.stringify(mine.body)}`);
    const a = q.sort ? mine.body.docs : byId(mine.body.docs);
    const b = q.sort ? theirs.docs : byId(theirs.docs);
    if (!q.sort && !isDeepStrictEqual(a, b)) {
      const ids = (xs) => new Set(xs.map((d) => d._id));
      const [ia, ib] = [ids(a), ids(b)];
      const onlyMine = a.filter((d) => !ib.has(d._id)).slice(0, 2);
      const onlyTheirs = b.filter((d) => !ia.has(d._id)).slice(0, 2);
      assert.fail(`${label} (seed ${SEED}): ${JSON.stringify(q)}\nonly couchkv: ${JSON.stringify(onlyMine)}\nonly pouchdb-find: ${JSON.stringify(onlyTheirs)}`);
    }
    assert.deepEqual(a, b, `${label} (seed ${SEED}): ${JSON.stringify(q)}`);
    compared += 1;
    if (a.length > 0) nonEmpty += 1;
  };

  // Without an index: every query is a full scan (no sort but _id).
  // Queries are made first (the seed decides them), then checked four at a time.
  const checkAll = async (queries, label) => {
    for (let i = 0; i < queries.length; i += 4) {
      await Promise.all(queries.slice(i, i + 4).map((q, j) => check(q, `${label} #${i + j}`)));
    }
  };
  let t = Date.now();
  await checkAll(Array.from({ length: QUERIES }, () => ({ ...query(null), limit: DOCS })), 'no index');
  console.log(`# full-scan queries: ${Date.now() - t} ms`);
  // With indexes on both sides: sorted and paged queries read them.
  for (const fields of [['n'], ['s'], ['o.x'], ['n', 's']]) {
    const def = { index: { fields }, ddoc: `idx-${fields.join('-')}`, name: fields.join('-') };
    await local.createIndex(def);
    const { status } = await adminCall(server, 'POST', `/${name}/_index`, def);
    assert.equal(status, 200);
  }
  t = Date.now();
  await checkAll(Array.from({ length: QUERIES }, () => {
    const q = query(['n', 's', 'o.x']);
    // pouchdb-find's planner can miss the index: name it.
    const f = Object.keys(q.sort[0])[0];
    return { ...q, use_index: [`idx-${f}`, f] };
  }), 'indexed');
  console.log(`# indexed queries: ${Date.now() - t} ms`);
  assert.equal(compared, 2 * QUERIES);
  // The generator is not trivially empty.
  assert.ok(nonEmpty > QUERIES / 2, `only ${nonEmpty} queries matched anything`);
});

test('_find pages with bookmarks, explains, reports execution stats, and keeps an index current across updates and deletions', async () => {
  const name = 'mango-paging';
  const remote = remoteDb(`${server.url}/${name}`);
  await remote.bulkDocs(Array.from({ length: 300 }, (_, i) => ({ _id: `p${String(i).padStart(3, '0')}`, n: i % 50, even: i % 2 === 0 })));
  let r = await adminCall(server, 'POST', `/${name}/_index`, { index: { fields: ['n'] }, ddoc: 'by-n', name: 'n' });
  assert.deepEqual(r.body, { result: 'created', id: '_design/by-n', name: 'n' });
  r = await adminCall(server, 'POST', `/${name}/_index`, { index: { fields: ['n'] }, ddoc: 'by-n', name: 'n' });
  assert.equal(r.body.result, 'exists');

  // Paging by bookmark gives every match once, in order.
  const seen = [];
  let bookmark;
  for (let pages = 0; pages < 20; pages++) {
    r = await adminCall(server, 'POST', `/${name}/_find`, { selector: { n: { $gte: 10 }, even: true }, sort: ['n'], limit: 40, bookmark, fields: ['_id', 'n'], execution_stats: true });
    assert.equal(r.status, 200);
    assert.equal(r.body.execution_stats.results_returned, r.body.docs.length);
    if (r.body.docs.length === 0) break;
    seen.push(...r.body.docs);
    bookmark = r.body.bookmark;
  }
  assert.equal(seen.length, 120);
  assert.equal(new Set(seen.map((d) => d._id)).size, 120);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i - 1].n <= seen[i].n);

  r = await adminCall(server, 'POST', `/${name}/_explain`, { selector: { n: { $gt: 5 } } });
  assert.equal(r.body.index.name, 'n');
  assert.deepEqual(r.body.mrargs.start_key, [5]);

  // Once a query has brought the index up to date, every write keeps it so in the write's own
  // batch: a query that does not update the index (`update: false`) sees updates and deletions.
  const doc = await remote.get('p000');
  await remote.put({ ...doc, n: 1000 });
  await remote.remove(await remote.get('p001'));
  r = await adminCall(server, 'POST', `/${name}/_find`, { selector: { n: { $gte: 999 } }, sort: ['n'], update: false });
  assert.deepEqual(r.body.docs.map((d) => d._id), ['p000']);
  r = await adminCall(server, 'POST', `/${name}/_find`, { selector: { n: 1 }, update: false });
  assert.ok(!r.body.docs.some((d) => d._id === 'p001'));
  assert.equal(r.body.docs.length, 5);

  // Errors in CouchDB's shape.
  r = await adminCall(server, 'POST', `/${name}/_find`, { selector: { n: { $bogus: 1 } } });
  assert.deepEqual([r.status, r.body.error], [400, 'invalid_operator']);
  r = await adminCall(server, 'POST', `/${name}/_find`, { selector: { q: 1 }, sort: ['q'] });
  assert.deepEqual([r.status, r.body.error], [400, 'no_usable_index']);
  r = await adminCall(server, 'POST', `/${name}/_find`, { selector: { q: 1 } });
  assert.match(r.body.warning, /No matching index/);

  // The index is listed, and deleted.
  r = await adminCall(server, 'GET', `/${name}/_index`);
  assert.deepEqual(r.body.indexes.map((i) => i.name), ['_all_docs', 'n']);
  r = await adminCall(server, 'DELETE', `/${name}/_index/by-n/json/n`);
  assert.deepEqual(r.body, { ok: true });
  r = await adminCall(server, 'GET', `/${name}/_index`);
  assert.equal(r.body.total_rows, 1);
});

test('a live PouchDB replication with a selector receives only matching documents, live', async () => {
  const name = 'mango-live';
  const remote = remoteDb(`${server.url}/${name}`);
  await remote.bulkDocs([{ _id: 'a', user: 'foo' }, { _id: 'b', user: 'bar' }]);
  const local = localDb('mango-live');
  const rep = local.replicate.from(remote, { live: true, retry: true, selector: { user: 'foo' } });
  try {
    await eventually(async () => (await local.allDocs()).rows.length === 1, 10000, 'first match');
    await remote.bulkDocs([{ _id: 'c', user: 'foo' }, { _id: 'd', user: 'baz' }, { _id: 'e', user: 'foo', n: 1 }]);
    await eventually(async () => (await local.allDocs()).rows.length === 3, 10000, 'live matches');
    // Nothing else arrives: the feed has caught up with the last write.
    const last = await remote.put({ _id: 'f', user: 'foo' });
    await eventually(async () => (await local.allDocs()).rows.length === 4, 10000, 'the last match');
    const ids = (await local.allDocs()).rows.map((r) => r.id);
    assert.deepEqual(ids, ['a', 'c', 'e', 'f']);
    assert.ok(last.ok);
  } finally {
    rep.cancel();
  }
  // An invalid selector is refused as CouchDB refuses it.
  const res = await fetch(`${server.url}/${name}/_changes?filter=_selector`, {
    method: 'POST',
    headers: { Authorization: `Basic ${Buffer.from('admin:test-admin-password').toString('base64')}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ selector: 'foo' }),
  });
  assert.equal(res.status, 400);
  assert.match((await res.json()).reason, /expected a JSON object/);
});
