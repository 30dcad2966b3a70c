// The first admin's generated password in Chromium (issue 17): a berth of its
// own started without BERTH_ADMIN_PASSWORD prints it once on standard error.
// Logging in with it from a deep link opens the change-password form with a
// message instead of the page; once changed, that page opens.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { launch, recordErrors, screenshot, unexpectedErrors } from './helpers.mjs';

const EMAIL = 'first-admin@example.com';

let chrome;
let server;
before(async () => {
  server = await serverWithGeneratedAdmin();
  chrome = await launch();
});
after(async () => {
  await chrome?.close();
  server?.stop();
});

/** A berth (BERTH_E2E_BIN) with an empty store and no admin password: its URL, the generated password and a stop function. */
async function serverWithGeneratedAdmin() {
  const bin = process.env.BERTH_E2E_BIN;
  assert.ok(bin, 'BERTH_E2E_BIN must name the berth binary (scripts/web.sh e2e sets it)');
  const dir = mkdtempSync(join(tmpdir(), 'berth-e2e-first-login-'));
  const env = { ...process.env };
  delete env.BERTH_ADMIN_PASSWORD;
  Object.assign(env, {
    BERTH_LISTEN: '127.0.0.1:0',
    BERTH_KUBE_LISTEN: '127.0.0.1:0',
    BERTH_DATABASE_URL: `sqlite://${dir}/berth.db?mode=rwc`,
    BERTH_ADMIN_EMAIL: EMAIL,
    BERTH_NO_CONTROLLER: 'true',
  });
  const child = spawn(bin, ['serve'], { cwd: join(dirname(fileURLToPath(import.meta.url)), '../..'), env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  let terminal = '';
  // Listening is logged after the password is printed, so both are there once it is.
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the berth did not start within 30 s; its log:\n${log}${terminal}`)), 30_000);
    const check = () => {
      const found = /listening on (http:\/\/[0-9.:]+)/.exec(log + terminal);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    };
    child.stdout.on('data', (chunk) => {
      log += chunk;
      check();
    });
    child.stderr.on('data', (chunk) => {
      terminal += chunk;
      check();
    });
    child.on('exit', (code) => reject(new Error(`the berth exited (${code}); its log:\n${log}${terminal}`)));
  });
  const password = / with password (\S+)/.exec(terminal)?.[1];
  assert.ok(password, `no generated password on standard error:\n${terminal}`);
  return {
    url,
    password,
    stop() {
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('the generated password is changed first, then the page asked for opens', async () => {
  const context = await chrome.browser.newContext({ baseURL: server.url, viewport: { width: 1280, height: 900 } });
  const p = recordErrors(await context.newPage());
  await p.goto('/admin/users');
  await p.getByLabel('Email').fill(EMAIL);
  await p.getByLabel('Password').fill(server.password);
  await p.getByRole('button', { name: 'Log in' }).click();
  await p.waitForURL((url) => url.pathname === '/admin/users', { timeout: 10_000 });
  await p.getByRole('heading', { name: 'Change your password', level: 1 }).waitFor();
  await p.getByTestId('must-change-password').getByText('must be changed before you go on').waitFor();
  await screenshot(p, 'first-login-change-password');
  assert.equal(new URL(p.url()).pathname, '/admin/users', 'the page stays at the address asked for');
  // Another page of the portal asks the same first.
  await p.getByRole('link', { name: 'Environments' }).click();
  await p.waitForURL((url) => url.pathname === '/');
  await p.getByRole('heading', { name: 'Change your password', level: 1 }).waitFor();
  await p.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Admin' }).click();
  await p.waitForURL((url) => url.pathname === '/admin');
  await p.getByLabel('Current password').fill(server.password);
  await p.getByLabel('New password').fill('a chosen admin passphrase');
  await p.getByRole('button', { name: 'Change password' }).click();
  await p.getByRole('heading', { name: 'Administration', level: 1 }).waitFor();
  await p.waitForURL((url) => url.pathname === '/admin/users');
  assert.equal(await p.getByTestId('must-change-password').count(), 0);
  // The old password no longer logs in; the new one does.
  const old = await p.request.post('/api/v1/auth/login', { data: { email: EMAIL, password: server.password } });
  assert.equal(old.status(), 401);
  const renewed = await p.request.post('/api/v1/auth/login', { data: { email: EMAIL, password: 'a chosen admin passphrase' } });
  assert.equal(renewed.status(), 200);
  assert.deepEqual(unexpectedErrors(p), []);
  await context.close();
});
