// Shared by the client tests: start the real couchkv binary on 127.0.0.1:0 and give PouchDB
// (with the in-memory adapter) for the local side.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import PouchDB from 'pouchdb';
import memory from 'pouchdb-adapter-memory';

PouchDB.plugin(memory);

/** Local databases: in memory. */
export const Pouch = PouchDB.defaults({ adapter: 'memory' });

/** The server admin the test servers run with. */
export const ADMIN = { username: 'admin', password: 'test-admin-password' };
export const adminHeader = `Basic ${Buffer.from(`${ADMIN.username}:${ADMIN.password}`).toString('base64')}`;

/** A database on the server, through PouchDB's HTTP adapter (as the admin unless told). */
/** A JSON request to a test server as its admin: `{status, body}`. */
export async function adminCall(server, method, path, body) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { Authorization: adminHeader, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

export function remoteDb(url, auth = ADMIN) {
  const db = new PouchDB(url, auth ? { auth } : {});
  if (db.adapter !== 'http') throw new Error(`expected the http adapter, got ${db.adapter}`);
  return db;
}

const BIN = process.env.COUCHKV_BIN
  ?? resolve(import.meta.dirname, '../../target/debug/couchkv');

let counter = 0;
/** A fresh local PouchDB (memory). */
export function localDb(prefix = 'local') {
  counter += 1;
  return new Pouch(`${prefix}-${process.pid}-${counter}`);
}

export function tempDir() {
  return mkdtempSync(join(tmpdir(), 'couchkv-js-'));
}

/** Starts `couchkv serve` on a free port; resolves once it listens. */
export function startServer({ dataDir = tempDir(), args = [] } = {}) {
  return new Promise((resolvePromise, reject) => {
    const proc = spawn(BIN, ['serve', '--addr', '127.0.0.1:0', '--data', dataDir,
      '--admin', `${ADMIN.username}:${ADMIN.password}`, '--pbkdf2-iterations', '1000', ...args], {
      env: { RUST_LOG: 'info', ...process.env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const logs = [];
    const lines = createInterface({ input: proc.stderr });
    const timer = setTimeout(() => reject(new Error(`server did not start: ${logs.join('\n')}`)), 30000);
    lines.on('line', (line) => {
      logs.push(line);
      const m = line.match(/addr=(\S+)/);
      if (m && line.includes('listening')) {
        clearTimeout(timer);
        const url = `http://${m[1]}`;
        resolvePromise({
          url,
          dataDir,
          proc,
          logs,
          /** Graceful stop (SIGTERM), resolves when the process is gone. */
          stop: () => stopProc(proc, 'SIGTERM'),
          kill: () => stopProc(proc, 'SIGKILL'),
          cleanup: () => rmSync(dataDir, { recursive: true, force: true }),
        });
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}): ${logs.join('\n')}`));
    });
  });
}

function stopProc(proc, signal) {
  return new Promise((res) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return res();
    proc.once('exit', () => res());
    proc.kill(signal);
  });
}

/** Waits until `check()` is truthy, polling every 20 ms, failing after `ms`. */
export async function eventually(check, ms = 10000, what = 'condition') {
  const start = Date.now();
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every document with its full revision tree and attachment data, for comparison. */
export async function snapshot(db) {
  const all = await db.allDocs({ include_docs: false });
  const out = {};
  // Deleted documents are not in allDocs: walk the changes feed for every id.
  const changes = await db.changes({ style: 'all_docs' });
  const ids = new Set([...all.rows.map((r) => r.id), ...changes.results.map((c) => c.id)]);
  for (const id of [...ids].sort()) {
    const leaves = await db.get(id, { open_revs: 'all', revs: true, attachments: true, binary: false });
    out[id] = leaves
      .map((l) => l.ok)
      .filter(Boolean)
      .sort((a, b) => (a._rev < b._rev ? -1 : 1));
  }
  return out;
}

/** 1,000 documents: plain ones, some with attachments, some deleted, some with conflicts. */
export async function fill(db) {
  const docs = [];
  for (let i = 0; i < 1000; i++) {
    const doc = { _id: `doc-${String(i).padStart(4, '0')}`, n: i, tags: ['a', 'b'], nested: { i } };
    if (i % 10 === 0) {
      doc._attachments = {
        'note.txt': { content_type: 'text/plain', data: Buffer.from(`note ${i}`).toString('base64') },
        'bytes.bin': { content_type: 'application/octet-stream', data: Buffer.from([0, 1, 2, 255, i % 256]).toString('base64') },
      };
    }
    docs.push(doc);
  }
  const results = await db.bulkDocs(docs);
  assert.ok(results.every((r) => r.ok));
  // Delete every 7th.
  const toDelete = results.filter((_, i) => i % 7 === 3).map((r) => ({ _id: r.id, _rev: r.rev, _deleted: true }));
  await db.bulkDocs(toDelete);
  // Conflicting branches on every 13th, made as replication makes them.
  const conflicts = [];
  for (let i = 5; i < 1000; i += 13) {
    const id = `doc-${String(i).padStart(4, '0')}`;
    const cur = await db.get(id, { revs: true }).catch(() => null);
    if (!cur) continue;
    const [pos, hash] = cur._rev.split('-');
    conflicts.push({
      _id: id,
      _rev: `${Number(pos) + 1}-${'b'.repeat(32)}`,
      _revisions: { start: Number(pos) + 1, ids: ['b'.repeat(32), hash] },
      branch: 'b',
    });
    conflicts.push({
      _id: id,
      _rev: `${Number(pos) + 1}-${'c'.repeat(32)}`,
      _revisions: { start: Number(pos) + 1, ids: ['c'.repeat(32), hash] },
      branch: 'c',
    });
  }
  await db.bulkDocs(conflicts, { new_edits: false });
}
