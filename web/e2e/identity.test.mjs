// Verified emails and password reset in Chromium, with mail read from a real
// SMTP server (Mailpit: BERTH_TEST_SMTP_URL and BERTH_TEST_MAILPIT_URL, as
// scripts/test.sh exports them). A berth of its own mails through it, so the
// other specs' server keeps verification off.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { ADMIN, launch, screenshot, unexpectedErrors, uniqueEmail } from './helpers.mjs';

const SMTP = process.env.BERTH_TEST_SMTP_URL;
const MAILPIT = process.env.BERTH_TEST_MAILPIT_URL;

let chrome;
let server;
before(async () => {
  assert.ok(SMTP && MAILPIT, 'BERTH_TEST_SMTP_URL and BERTH_TEST_MAILPIT_URL must name a Mailpit (scripts/mailpit.sh start DIR prints both; scripts/test.sh exports them)');
  server = await serverWithMail();
  chrome = await launch();
});
after(async () => {
  await chrome?.close();
  server?.stop();
});

/** A berth (BERTH_E2E_BIN) mailing through the test Mailpit; its URL and a stop function. */
async function serverWithMail() {
  const bin = process.env.BERTH_E2E_BIN;
  assert.ok(bin, 'BERTH_E2E_BIN must name the berth binary (scripts/web.sh e2e sets it)');
  const dir = mkdtempSync(join(tmpdir(), 'berth-e2e-mail-'));
  const env = {
    ...process.env,
    BERTH_LISTEN: '127.0.0.1:0',
    BERTH_KUBE_LISTEN: '127.0.0.1:0',
    BERTH_DATABASE_URL: `sqlite://${dir}/berth.db?mode=rwc`,
    BERTH_ADMIN_EMAIL: ADMIN.email,
    BERTH_ADMIN_PASSWORD: ADMIN.password,
    BERTH_SMTP_URL: SMTP,
    BERTH_NO_CONTROLLER: 'true',
  };
  // Links point at whatever serves them; the spec opens them on this server.
  env.BERTH_PUBLIC_URL = 'http://berth.test';
  const child = spawn(bin, ['serve'], { cwd: join(dirname(fileURLToPath(import.meta.url)), '../..'), env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the berth with mail did not start within 30 s; its log:\n${log}`)), 30_000);
    const read = (chunk) => {
      log += chunk;
      const found = /listening on (http:\/\/[0-9.:]+)/.exec(log);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    child.on('exit', (code) => reject(new Error(`the berth with mail exited (${code}); its log:\n${log}`)));
  });
  return {
    url,
    stop() {
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The path and query of the newest mailed link to `to` whose subject has `subject` (15 s at most). */
async function mailedLink(to, subject) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const found = await (await fetch(`${MAILPIT}/api/v1/search?query=${encodeURIComponent(`to:"${to}" subject:"${subject}"`)}`)).json();
    const first = found.messages?.[0];
    if (first) {
      const message = await (await fetch(`${MAILPIT}/api/v1/message/${first.ID}`)).json();
      const link = /http:\/\/berth\.test(\/\S+)/.exec(message.Text);
      assert.ok(link, `a link in: ${message.Text}`);
      return link[1];
    }
    assert.ok(Date.now() < deadline, `no mail "${subject}" to ${to} within 15 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function page() {
  const context = await chrome.browser.newContext({ baseURL: server.url, viewport: { width: 1280, height: 900 } });
  const p = await context.newPage();
  p.consoleErrors = [];
  p.on('pageerror', (err) => p.consoleErrors.push(String(err)));
  return p;
}

test('register, open the mailed link, verified', async () => {
  const p = await page();
  const email = uniqueEmail('verify');
  await p.goto('/register');
  await p.getByLabel('Email').fill(email);
  await p.getByLabel('Password').fill('correct horse battery');
  await p.getByRole('button', { name: 'Create account' }).click();
  await p.getByText('Verify your email address').waitFor();
  await screenshot(p, 'verify-banner');
  // Opened logged out (another browser), the link asks to log in to the
  // account it is for, then verifies it.
  await p.context().clearCookies();
  await p.goto(await mailedLink(email, 'Verify'));
  await p.getByRole('heading', { name: 'Log in to Berth' }).waitFor();
  await p.getByLabel('Email').fill(email);
  await p.getByLabel('Password').fill('correct horse battery');
  await p.getByRole('button', { name: 'Log in' }).click();
  await p.getByText('Your email is verified').waitFor();
  await screenshot(p, 'verified');
  // The banner is gone once the account is verified.
  await p.goto('/');
  await p.getByRole('heading', { level: 1 }).first().waitFor();
  assert.equal(await p.getByText('Verify your email address').count(), 0);
  assert.deepEqual(unexpectedErrors(p), []);
  await p.context().close();
});

test('forgot password: the mailed link sets a new one, used once', async () => {
  const p = await page();
  const email = uniqueEmail('reset');
  const registered = await p.request.post('/api/v1/auth/register', { data: { email, password: 'correct horse battery' } });
  assert.equal(registered.status(), 201);
  await p.context().clearCookies();
  await p.goto('/login');
  await p.getByRole('link', { name: 'Forgot your password?' }).click();
  await p.getByLabel('Email').fill(email);
  await p.getByRole('button', { name: 'Mail me a link' }).click();
  await p.getByText('a link to choose a new password is on its way').waitFor();
  const link = await mailedLink(email, 'Reset');
  await p.goto(link);
  await p.getByLabel('New password').fill('password123');
  await p.getByRole('button', { name: 'Set password' }).click();
  await p.locator('#reset-password-error').waitFor();
  await screenshot(p, 'reset-common-password');
  await p.getByLabel('New password').fill('a new password from the mail');
  await p.getByRole('button', { name: 'Set password' }).click();
  await p.getByText('Your password is set').waitFor();
  await p.goto(link);
  await p.getByLabel('New password').fill('yet another new password');
  await p.getByRole('button', { name: 'Set password' }).click();
  await p.getByText('This link has expired or was used already').waitFor();
  const login = await p.request.post('/api/v1/auth/login', { data: { email, password: 'a new password from the mail' } });
  assert.equal(login.status(), 200);
  assert.deepEqual(unexpectedErrors(p), []);
  await p.context().close();
});
