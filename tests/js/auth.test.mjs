// A PouchDB app's user journey: sign up through _users, log in through _session, live-sync the
// user's own userdb-… with cookie auth and with Basic auth in the URL; another user is refused
// and changes nothing.
import { test, before, after } from 'node:test';
import { startServer } from './helpers.mjs';
import { userJourney } from './journeys.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server.stop();
  server.cleanup();
});

test('sign up, log in, live-sync the own database; nobody else gets in', async () => {
  await userJourney(server.url);
});
