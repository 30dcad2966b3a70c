// Single sign-on in Chromium: the login page offers the OpenID provider that
// `make test` starts (scripts/oidc.sh, users in tools/oidc-provider/testing.json),
// the provider's own login form signs the person in, and the portal opens as them.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launch, newPage, screenshot, unexpectedErrors } from './helpers.mjs';

let chrome;
before(async () => {
  assert.ok(
    process.env.BERTH_TEST_OIDC_ISSUER,
    'BERTH_TEST_OIDC_ISSUER is not set: this spec needs the OpenID provider `make test` starts (scripts/oidc.sh start DIR), which scripts/web.sh then configures Berth with',
  );
  chrome = await launch();
});
after(async () => {
  await chrome?.close();
});

test('the login page says why a single sign-on failed', async () => {
  const page = await newPage(chrome.browser);
  await page.goto('/login?ssoError=unverified_email');
  const alert = page.getByRole('alert');
  await alert.waitFor();
  assert.match(await alert.textContent(), /has not verified your email address/);
  await screenshot(page, 'login-sso-error');
  assert.deepEqual(unexpectedErrors(page), []);
  await page.context().close();
});

test('"Sign in with" the provider lands in the portal as that person', async () => {
  const page = await newPage(chrome.browser);
  await page.goto('/login?next=/tokens');
  const signIn = page.getByRole('link', { name: 'Sign in with Test Provider' });
  await signIn.waitFor();
  await screenshot(page, 'login-sso');
  await signIn.click();
  // The provider's own form, on its own origin.
  await page.waitForURL((url) => url.toString().startsWith(process.env.BERTH_TEST_OIDC_ISSUER));
  await page.getByLabel('Username:').fill('ada');
  await page.getByLabel('Password:').fill('ada-provider-pw');
  await page.getByRole('button', { name: 'Login' }).click();
  await page.waitForURL((url) => url.pathname === '/tokens' && url.toString().startsWith(process.env.BERTH_URL ?? ''));
  const user = page.getByTestId('current-user');
  await user.waitFor();
  assert.equal(await user.getAttribute('title'), 'ada@example.com');
  await screenshot(page, 'signed-in-by-sso');
  assert.deepEqual(unexpectedErrors(page), []);
  await page.context().close();
});
