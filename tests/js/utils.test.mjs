// The admin page (/_utils/) in a real browser: Debian's Chromium, headless, driven by
// playwright-core, against a running couchkv. One walk through every page, as a person would:
// log in, make a database and a document, edit it (and meet a 409), see a conflict drawn,
// watch a write from another client arrive live, make a user and see the page as them, make and
// revoke a token, import 2,000 keys into a namespace. A screenshot of each page goes to
// tests/js/out/utils/ (or $COUCHKV_TEST_OUT); the page's load time (navigation timing) is
// printed, not asserted.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { ADMIN, adminCall, adminHeader, startServer } from './helpers.mjs';

const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const OUT = process.env.COUCHKV_TEST_OUT ?? resolve(import.meta.dirname, 'out/utils');

let server;
let browser;
before(async () => {
  mkdirSync(OUT, { recursive: true });
  server = await startServer();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
});
after(async () => {
  await browser?.close();
  await server?.stop();
  server?.cleanup();
});

async function shot(page, name) {
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: false });
}

async function login(page, name, password) {
  await page.goto(`${server.url}/_utils/#/login`);
  await page.fill('#login input[name=name]', name);
  await page.fill('#login input[name=password]', password);
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#logout');
  await page.waitForSelector('body[data-page=databases]');
}

async function logout(page) {
  await page.click('#logout');
  await page.waitForSelector('#login');
}

/** The page's text once `selector` holds something. */
const text = (page, selector) => page.locator(selector).innerText();

test('the admin page in Chromium: databases, documents, conflicts, live changes, users, tokens, KV import', async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // A refused request (the 409 below, a 403 for the user) is logged by the browser itself.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
  });
  page.on('dialog', (d) => d.accept());

  // The page: served with its policy, loads, and sends an anonymous visitor to log in.
  const first = await page.goto(`${server.url}/_utils`);
  assert.equal(first.status(), 200);
  assert.match(first.headers()['content-security-policy'], /script-src 'self'/);
  await page.waitForSelector('#login');
  const timing = await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    return { domContentLoaded: nav.domContentLoadedEventEnd - nav.startTime, load: nav.loadEventEnd - nav.startTime };
  });
  console.log(`# /_utils/ navigation timing: DOMContentLoaded ${timing.domContentLoaded.toFixed(1)} ms, load ${timing.load.toFixed(1)} ms`);
  await shot(page, '01-login');

  // Log in with a wrong password, then the right one.
  await page.fill('#login input[name=name]', ADMIN.username);
  await page.fill('#login input[name=password]', 'not-the-password');
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#login .notice.error');
  await login(page, ADMIN.username, ADMIN.password);
  assert.match(await text(page, '#who'), new RegExp(ADMIN.username));

  // A database, made from the page.
  await page.fill('#create-db input[name=name]', 'notes');
  await page.click('#create-db button[type=submit]');
  await page.waitForSelector('#db-info');
  assert.equal(page.url(), `${server.url}/_utils/#/db/notes`);
  assert.equal((await adminCall(server, 'GET', '/notes')).status, 200);

  // A document: created, then edited; its numbers and field order stay as typed.
  await page.click('#new-doc');
  await page.waitForSelector('#doc-json');
  await page.fill('#doc-json', '{"_id": "note-1", "zeta": 1, "title": "first", "n": 0.18698566827009722}');
  await page.click('#doc-form button[type=submit]');
  await page.waitForSelector('#save');
  assert.match(page.url(), /#\/db\/notes\/doc\/note-1$/);
  const typed = await page.inputValue('#doc-json');
  await page.fill('#doc-json', typed.replace('"first"', '"edited"'));
  await page.click('#save');
  await page.waitForSelector('#doc-messages .notice.ok');
  const raw = await (await fetch(`${server.url}/notes/note-1`, { headers: { Authorization: adminHeader } })).text();
  assert.match(raw, /^\{"_id":"note-1","_rev":"2-[0-9a-f]{32}","zeta":1,"title":"edited","n":0\.18698566827009722\}$/);
  await page.waitForSelector('#revtree g.leaf.winner[data-rev^="2-"]');

  // Someone else writes meanwhile: saving the stale text is a 409, said so.
  const current = JSON.parse(raw);
  assert.equal((await adminCall(server, 'PUT', '/notes/note-1', { ...current, title: 'theirs' })).status, 201);
  await page.fill('#doc-json', (await page.inputValue('#doc-json')).replace('"edited"', '"mine"'));
  await page.click('#save');
  await page.waitForSelector('#doc-messages .notice.error');
  assert.match(await text(page, '#doc-messages .notice.error'), /Conflict \(409\).*current one is 3-/s);
  await shot(page, '03-document-409');

  // The current version loaded again; an attachment uploaded, listed, and read back.
  await page.click('#doc-messages .notice.error button.link');
  await page.waitForFunction(() => document.querySelector('#doc-json')?.value.includes('"theirs"'));
  const attFile = join(OUT, 'hello.txt');
  writeFileSync(attFile, 'hello, attachment');
  await page.setInputFiles('#upload input[type=file]', attFile);
  await page.click('#upload button[type=submit]');
  await page.waitForSelector('#attachments a[download="hello.txt"]');
  const att = await fetch(`${server.url}/notes/note-1/hello.txt`, { headers: { Authorization: adminHeader } });
  assert.equal(await att.text(), 'hello, attachment');

  // A conflict made through the API: both branches drawn, the winner marked.
  const one = await adminCall(server, 'PUT', '/notes/clash', { v: 1 });
  const h1 = one.body.rev.split('-')[1];
  for (const [hash, v] of [['a'.repeat(32), 'left'], ['b'.repeat(32), 'right']]) {
    const r = await adminCall(server, 'POST', '/notes/_bulk_docs', {
      new_edits: false,
      docs: [{ _id: 'clash', _rev: `2-${hash}`, v, _revisions: { start: 2, ids: [hash, h1] } }],
    });
    assert.equal(r.status, 201);
  }
  await page.goto(`${server.url}/_utils/#/db/notes/doc/clash`);
  await page.waitForSelector('#revtree svg');
  assert.equal(await page.locator('#revtree g.leaf').count(), 2);
  assert.equal(await page.locator(`#revtree g.leaf.winner[data-rev="2-${'b'.repeat(32)}"]`).count(), 1);
  assert.equal(await page.locator(`#revtree g.leaf.conflict[data-rev="2-${'a'.repeat(32)}"]`).count(), 1);
  assert.equal(await page.locator(`#revtree g.inner[data-rev="${one.body.rev}"]`).count(), 1);
  await page.click(`#revtree g.leaf.conflict`);
  await page.waitForFunction(() => document.querySelector('#rev-body')?.textContent.includes('"left"'));
  await shot(page, '04-revision-tree');

  // Live changes: a write by another client shows up as it happens.
  await page.goto(`${server.url}/_utils/#/db/notes/changes`);
  await page.waitForFunction(() => document.querySelector('#feed-status')?.textContent === 'live');
  assert.equal(await page.locator('#changes tr[data-id="clash"]').count(), 1);
  const sent = Date.now();
  assert.equal((await adminCall(server, 'PUT', '/notes/live-1', { from: 'another client' })).status, 201);
  await page.waitForSelector('#changes tr.fresh[data-id="live-1"]', { timeout: 10000 });
  console.log(`# a write by another client appeared in the live changes page after ${Date.now() - sent} ms`);
  await shot(page, '05-live-changes');

  // The databases page, with the new database's figures.
  await page.goto(`${server.url}/_utils/#/`);
  await page.waitForFunction(() => document.querySelector('tr[data-db="notes"] td:nth-child(2)')?.textContent === '3');
  assert.match(await text(page, 'tr[data-db="notes"] td:nth-child(5)'), /^\d+ B$/);
  await shot(page, '02-databases');

  // A user: made on the page, with a database of their own; as them, only that database.
  await page.goto(`${server.url}/_utils/#/users`);
  await page.fill('#create-user input[name=name]', 'carol');
  await page.fill('#create-user input[name=password]', 'carol-password');
  await page.click('#create-user button[type=submit]');
  await page.waitForSelector('#users tr[data-user="carol"]');
  await shot(page, '06-users');
  await logout(page);
  await login(page, 'carol', 'carol-password');
  await page.waitForFunction(() => document.querySelector('tr[data-db] td:nth-child(2)')?.textContent === '0');
  const mine = await page.locator('tr[data-db]').evaluateAll((rows) => rows.map((r) => r.dataset.db));
  assert.deepEqual(mine, [`userdb-${Buffer.from('carol').toString('hex')}`]);
  assert.equal(await page.locator('nav a[href="#/users"]').count(), 0);
  await shot(page, '07-user-view');
  await page.goto(`${server.url}/_utils/#/db/notes`);
  await page.waitForSelector('#view .notice.error');
  assert.match(await text(page, '#view .notice.error'), /^403 forbidden/);
  await logout(page);
  await login(page, ADMIN.username, ADMIN.password);

  // An API token: shown once, works, listed without its secret, revoked.
  await page.goto(`${server.url}/_utils/#/tokens`);
  await page.fill('#create-token input[name=name]', 'ci');
  await page.check('#create-token input[name=write]');
  await page.click('#create-token button[type=submit]');
  const token = await text(page, '#new-token');
  assert.match(token, /^ckv_/);
  const kvList = () => fetch(`${server.url}/client/v4/accounts/local/storage/kv/namespaces`, {
    headers: { Authorization: `Bearer ${token}` },
  }).then((r) => r.status);
  assert.equal(await kvList(), 200);
  await page.click('#token-messages button.link');
  await page.waitForSelector('#tokens tr[data-token="ci"]');
  assert.doesNotMatch(await text(page, '#tokens'), new RegExp(token.split('_').pop()));
  await shot(page, '08-tokens');
  await page.click('#tokens tr[data-token="ci"] button.danger');
  await page.waitForFunction(() => !document.querySelector('#tokens tr[data-token="ci"]'));
  assert.equal(await kvList(), 401);

  // A namespace, and 2,000 keys imported from a JSON file with a progress bar.
  await page.goto(`${server.url}/_utils/#/kv`);
  await page.fill('#create-ns input[name=title]', 'imports');
  await page.click('#create-ns button[type=submit]');
  await page.waitForSelector('#import');
  const nsId = decodeURIComponent(page.url().split('#/kv/')[1]);
  const items = Array.from({ length: 2000 }, (_, i) => ({ key: `item/${String(i).padStart(4, '0')}`, value: `value ${i}` }));
  items[7].metadata = { color: 'red', n: 7 };
  const file = join(OUT, 'import-2000.json');
  writeFileSync(file, JSON.stringify(items));
  await page.setInputFiles('#import input[type=file]', file);
  await page.click('#import button[type=submit]');
  await page.waitForSelector('.notice.ok >> text=Imported 2000 keys.');
  assert.equal(await page.locator('#import-progress').evaluate((p) => p.value), 2000);
  let listed = 0;
  let cursor = '';
  do {
    const r = await fetch(`${server.url}/client/v4/accounts/local/storage/kv/namespaces/${nsId}/keys?limit=1000${cursor ? `&cursor=${cursor}` : ''}`,
      { headers: { Authorization: adminHeader } }).then((x) => x.json());
    listed += r.result.length;
    cursor = r.result_info.cursor;
  } while (cursor);
  assert.equal(listed, 2000);
  await page.waitForSelector('#keys tr[data-key="item/0007"]');
  await page.click('#keys tr[data-key="item/0007"] button');
  await page.waitForFunction(() => document.querySelector('#kv-value')?.textContent === 'value 7');
  assert.deepEqual(JSON.parse(await text(page, '#kv-metadata')), { color: 'red', n: 7 });
  await shot(page, '09-kv-namespace');

  assert.deepEqual(errors, []);
});
