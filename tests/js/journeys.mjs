// Journeys a PouchDB app takes, run against both hosts (the native server and the edge).
import assert from 'node:assert/strict';
import PouchDB from 'pouchdb';
import { localDb, remoteDb, eventually } from './helpers.mjs';

export async function signup(url, name, password) {
  const r = await fetch(`${url}/_users/org.couchdb.user:${name}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, password, type: 'user', roles: [] }),
  });
  assert.equal(r.status, 201);
}

export async function login(url, name, password) {
  const r = await fetch(`${url}/_session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, password }),
  });
  assert.equal(r.status, 200);
  return r.headers.get('set-cookie').split(';')[0];
}

export const userdb = (url, name) => `${url}/userdb-${Buffer.from(name, 'utf8').toString('hex')}`;

/**
 * A PouchDB app's user journey against the server at `url`: alice and bob sign up, alice logs in
 * and live-syncs her own database (cookie and Basic auth); bob and anonymous are refused and
 * change nothing; bob's database is his alone.
 */
export async function userJourney(url) {
  await signup(url, 'alice', 'wonderland');
  await signup(url, 'bob', 'builder');
  const cookie = await login(url, 'alice', 'wonderland');

  // Cookie auth, as pouchdb-authentication does it: the cookie on every request.
  const viaCookie = new PouchDB(userdb(url, 'alice'), {
    skip_setup: true,
    fetch: (url, opts) => {
      opts.headers.set('Cookie', cookie);
      return PouchDB.fetch(url, opts);
    },
  });
  const device = localDb('alice-device');
  const sync = device.sync(viaCookie, { live: true, retry: true });
  try {
    await device.put({ _id: 'note:1', text: 'from the device' });
    // Basic auth in the remote URL, the other way PouchDB apps authenticate.
    const basicUrl = userdb(url, 'alice').replace('http://', 'http://alice:wonderland@');
    const viaBasic = new PouchDB(basicUrl, { skip_setup: true });
    await eventually(async () => (await viaBasic.get('note:1').catch(() => null))?.text === 'from the device', 15000, 'device → server');
    await viaBasic.put({ _id: 'note:2', text: 'from another device' });
    await eventually(async () => (await device.get('note:2').catch(() => null))?.text === 'from another device', 15000, 'server → device');
  } finally {
    sync.cancel();
  }

  // bob can neither read nor write alice's database, and changes nothing.
  const before = await remoteDb(userdb(url, 'alice')).info();
  const asBob = new PouchDB(userdb(url, 'alice'), { skip_setup: true, auth: { username: 'bob', password: 'builder' } });
  await assert.rejects(asBob.get('note:1'), (e) => e.status === 403);
  await assert.rejects(asBob.put({ _id: 'intruder' }), (e) => e.status === 403);
  const intrusion = await localDb('bob-device').replicate.to(asBob).catch((e) => e);
  assert.ok(intrusion.status === 403 || intrusion.doc_write_failures > 0 || intrusion.ok === false);
  const anonymous = new PouchDB(userdb(url, 'alice'), { skip_setup: true });
  await assert.rejects(anonymous.get('note:1'), (e) => e.status === 401);
  const afterInfo = await remoteDb(userdb(url, 'alice')).info();
  assert.equal(afterInfo.update_seq, before.update_seq, 'nothing was written');
  assert.equal(afterInfo.doc_count, 2);
  // And bob's own database is his alone.
  await new PouchDB(userdb(url, 'bob'), { skip_setup: true, auth: { username: 'bob', password: 'builder' } }).put({ _id: 'mine' });
  await assert.rejects(new PouchDB(userdb(url, 'bob'), { skip_setup: true, auth: { username: 'alice', password: 'wonderland' } }).get('mine'), (e) => e.status === 403);
}
