import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ADMIN, launch, login, newPage, register, screenshot, unexpectedErrors, uniqueEmail } from './helpers.mjs';

let chrome;
before(async () => {
  chrome = await launch();
});
after(async () => {
  await chrome?.close();
});

test('the UI is served with a strict CSP and API paths are not swallowed', async () => {
  const page = await newPage(chrome.browser);
  const response = await page.goto('/environments/anything');
  assert.equal(response.status(), 200);
  const headers = response.headers();
  assert.match(headers['content-security-policy'], /script-src 'self'; style-src 'self'/);
  assert.equal(headers['cache-control'], 'no-cache');
  const api = await page.request.get('/api/v1/does-not-exist');
  assert.equal(api.status(), 404);
  assert.equal((await api.json()).error.code, 'not_found');
  await page.context().close();
});

test('a weak password is shown beside its field at register', async () => {
  const page = await newPage(chrome.browser);
  await page.goto('/register');
  await screenshot(page, 'register');
  await page.getByLabel('Email').fill(uniqueEmail('weak'));
  await page.getByLabel('Password').fill('short');
  await page.getByRole('button', { name: 'Create account' }).click();
  const error = page.locator('#register-password-error');
  await error.waitFor();
  assert.match(await error.textContent(), /10/);
  assert.equal(await page.getByLabel('Password').getAttribute('aria-invalid'), 'true');
  assert.match(await page.getByLabel('Password').getAttribute('aria-describedby'), /register-password-error/);
  await screenshot(page, 'register-validation-error');
  assert.deepEqual(unexpectedErrors(page), []);
  await page.context().close();
});

test('register, see yourself, create a token shown once, revoke it, log out and in', async () => {
  const page = await newPage(chrome.browser);
  const email = uniqueEmail('ada');
  await register(page, email);
  assert.equal(await page.getByTestId('current-user').getAttribute('title'), email);
  await screenshot(page, 'environments');

  await page.getByRole('link', { name: 'Tokens' }).click();
  await page.getByRole('heading', { name: 'Personal access tokens' }).waitFor();
  await page.getByText('No tokens yet').waitFor();
  await page.getByLabel('Name', { exact: true }).fill('laptop');
  await page.getByRole('button', { name: 'Create token' }).click();
  const secret = await page.getByTestId('token-secret').textContent();
  assert.match(secret, /^berth_pat_/);
  await page.getByRole('cell', { name: 'laptop', exact: true }).waitFor();
  await screenshot(page, 'tokens-created');

  const me = await page.request.get('/api/v1/me', { headers: { authorization: `Bearer ${secret}` } });
  assert.equal(me.status(), 200);

  await page.reload();
  await page.getByRole('cell', { name: 'laptop', exact: true }).waitFor();
  assert.equal(await page.getByTestId('token-secret').count(), 0, 'the secret is shown only once');
  assert.equal((await page.content()).includes(secret), false);

  page.once('dialog', (dialog) => dialog.accept());
  await page.getByRole('button', { name: 'Revoke laptop' }).click();
  await page.getByText('No tokens yet').waitFor();
  const revoked = await page.request.get('/api/v1/me', { headers: { authorization: `Bearer ${secret}` } });
  assert.equal(revoked.status(), 401);
  await screenshot(page, 'tokens');

  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('heading', { name: 'Log in to Berth' }).waitFor();
  await screenshot(page, 'login');
  await login(page, { email, password: 'correct horse battery' });
  assert.deepEqual(unexpectedErrors(page), []);
  await page.context().close();
});

test('wrong credentials say what to do', async () => {
  const page = await newPage(chrome.browser);
  await page.goto('/login');
  await page.getByLabel('Email').fill(uniqueEmail('nobody'));
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Log in' }).click();
  const alert = page.getByRole('alert');
  await alert.waitFor();
  assert.match(await alert.textContent(), /do not match an account/);
  await page.context().close();
});

test('admins list users and can change a role; members cannot see admin', async () => {
  const member = await newPage(chrome.browser);
  const memberEmail = uniqueEmail('member');
  await register(member, memberEmail);
  assert.equal(await member.getByRole('link', { name: 'Admin' }).count(), 0);
  await member.goto('/admin/users');
  await member.getByRole('heading', { name: 'Page not found' }).waitFor();
  await member.context().close();

  for (const scheme of ['light', 'dark']) {
    const page = await newPage(chrome.browser, scheme);
    await login(page, ADMIN);
    await page.getByRole('link', { name: 'Admin' }).click();
    const table = page.getByTestId('users-table');
    await table.waitFor();
    await page.getByRole('cell', { name: memberEmail }).waitFor();
    await page.getByRole('cell', { name: ADMIN.email }).waitFor();
    await screenshot(page, scheme === 'light' ? 'admin-users' : 'admin-users-dark');
    if (scheme === 'light') {
      const [patched] = await Promise.all([
        page.waitForResponse((r) => r.url().includes('/api/v1/admin/users/') && r.request().method() === 'PATCH'),
        page.getByLabel(`Role of ${memberEmail}`).selectOption('admin'),
      ]);
      assert.equal(patched.status(), 200);
      const users = await (await page.request.get('/api/v1/admin/users')).json();
      assert.equal(users.items.find((u) => u.email === memberEmail).role, 'admin');
    }
    assert.deepEqual(unexpectedErrors(page), []);
    await page.context().close();
  }
});

test('keyboard alone reaches the login form and submits it', async () => {
  const page = await newPage(chrome.browser);
  await page.goto('/login');
  await page.getByRole('heading', { name: 'Log in to Berth' }).waitFor();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
  await page.keyboard.press('Tab');
  // With single sign-on configured (make test configures it), its button
  // comes first.
  if ((await page.evaluate(() => document.activeElement?.textContent)).startsWith('Sign in with')) {
    await page.keyboard.press('Tab');
  }
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'login-email');
  await page.keyboard.type(ADMIN.email);
  await page.keyboard.press('Tab');
  await page.keyboard.type(ADMIN.password);
  await page.keyboard.press('Enter');
  await page.getByTestId('current-user').waitFor();
  await page.context().close();
});
