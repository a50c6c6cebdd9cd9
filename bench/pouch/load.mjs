// Load test (issue 8; a benchmark, not a CI test): SUBSCRIBERS EventSource `_changes` feeds
// spread over DBS databases, WRITERS concurrent writers, for SECONDS, against couchkv on redb
// over loopback. Bounded and self-stopping. Prints writes/s, write-to-subscriber latency
// p50/p99/max, the server's RSS at the start and the end, and every error.
//
//   cargo build --release && (cd bench/pouch && npm install && node load.mjs [SECONDS])
//   SUBSCRIBERS=1000 DBS=100 WRITERS=50 by default.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { EventSource } from 'eventsource';

const SECONDS = Number(process.argv[2] ?? 60);
const SUBSCRIBERS = Number(process.env.SUBSCRIBERS ?? 1000);
const DBS = Number(process.env.DBS ?? 100);
const WRITERS = Number(process.env.WRITERS ?? 50);
const COUCHKV = process.env.COUCHKV_BIN ?? resolve(import.meta.dirname, '../../target/release/couchkv');
const AUTH = { Authorization: `Basic ${Buffer.from('admin:bench').toString('base64')}` };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function rssMiB(pid) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) / 1024 : NaN;
}

const dir = mkdtempSync(join(tmpdir(), 'couchkv-load-'));
const proc = spawn(COUCHKV, ['serve', '--addr', '127.0.0.1:0', '--data', dir, '--admin', 'admin:bench'], {
  stdio: ['ignore', 'ignore', 'pipe'],
  env: { ...process.env, RUST_LOG: 'warn,couchkv=info' },
});
const serverLog = [];
const url = await new Promise((res, rej) => {
  createInterface({ input: proc.stderr }).on('line', (l) => {
    serverLog.push(l);
    const m = l.match(/addr=(\S+)/);
    if (m) res(`http://${m[1]}`);
  });
  proc.on('exit', (c) => rej(new Error(`couchkv exited ${c}`)));
});

const errors = [];
const sent = new Map();
const samples = [];
let delivered = 0;
try {
  for (let d = 0; d < DBS; d++) {
    const r = await fetch(`${url}/load${d}`, { method: 'PUT', headers: AUTH });
    if (r.status !== 201) throw new Error(`create load${d}: ${r.status}`);
  }
  process.stderr.write(`${DBS} databases; opening ${SUBSCRIBERS} EventSource feeds…\n`);
  const sources = [];
  let open = 0;
  for (let s = 0; s < SUBSCRIBERS; s++) {
    const es = new EventSource(`${url}/load${s % DBS}/_changes?feed=eventsource&since=now&heartbeat=10000`, {
      fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, ...AUTH } }),
    });
    es.onopen = () => { open += 1; };
    es.onerror = (e) => { errors.push(`subscriber ${s}: ${e.message ?? e.type}`); };
    es.onmessage = (ev) => {
      const now = performance.now();
      const t0 = sent.get(JSON.parse(ev.data).id);
      if (t0 !== undefined) { samples.push(now - t0); delivered += 1; }
    };
    sources.push(es);
  }
  for (let i = 0; open < SUBSCRIBERS && i < 600; i++) await sleep(100);
  if (open < SUBSCRIBERS) throw new Error(`only ${open}/${SUBSCRIBERS} feeds opened`);
  await sleep(500);
  const rssStart = rssMiB(proc.pid);
  process.stderr.write(`feeds open; RSS ${rssStart.toFixed(1)} MiB; ${WRITERS} writers for ${SECONDS} s…\n`);

  let writes = 0;
  const deadline = performance.now() + SECONDS * 1000;
  const writer = async (w) => {
    let n = 0;
    while (performance.now() < deadline) {
      const db = (w * 7 + n) % DBS;
      const id = `w${w}-${n}`;
      n += 1;
      sent.set(id, performance.now());
      try {
        const r = await fetch(`${url}/load${db}/${id}`, {
          method: 'PUT',
          headers: { ...AUTH, 'Content-Type': 'application/json' },
          body: JSON.stringify({ writer: w, n }),
        });
        await r.arrayBuffer();
        if (r.status === 201) writes += 1;
        else errors.push(`write ${id}: ${r.status}`);
      } catch (e) {
        errors.push(`write ${id}: ${e.message}`);
      }
    }
  };
  const t0 = performance.now();
  let ticks = 0;
  const progress = setInterval(() => {
    ticks += 1;
    process.stderr.write(`  ${ticks * 10}s: ${writes} writes, ${delivered} deliveries, RSS ${rssMiB(proc.pid).toFixed(1)} MiB\n`);
  }, 10000);
  await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
  const elapsed = (performance.now() - t0) / 1000;
  clearInterval(progress);
  // Let the last changes arrive.
  const want = writes * (SUBSCRIBERS / DBS);
  for (let i = 0; i < 100 && delivered < want; i++) await sleep(50);
  const rssEnd = rssMiB(proc.pid);
  for (const es of sources) es.close();

  samples.sort((a, b) => a - b);
  const pct = (p) => samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))] ?? NaN;
  console.log(`\nload: ${SUBSCRIBERS} EventSource subscribers over ${DBS} databases, ${WRITERS} writers, ${elapsed.toFixed(1)} s, couchkv on redb`);
  console.log(`writes: ${writes} (${(writes / elapsed).toFixed(0)}/s)`);
  console.log(`deliveries: ${delivered}/${want} (each write reaches ${SUBSCRIBERS / DBS} subscribers)`);
  console.log(`write-to-subscriber latency ms: p50 ${pct(50).toFixed(2)}, p99 ${pct(99).toFixed(2)}, max ${samples.at(-1)?.toFixed(2)}`);
  console.log(`server RSS MiB: start ${rssStart.toFixed(1)}, end ${rssEnd.toFixed(1)}`);
  console.log(`errors: ${errors.length}${errors.length ? ` (first: ${errors.slice(0, 5).join('; ')})` : ''}`);
  const panics = serverLog.filter((l) => l.includes('panicked'));
  console.log(`server panics: ${panics.length}`);
} finally {
  proc.kill('SIGTERM');
  await sleep(500);
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
