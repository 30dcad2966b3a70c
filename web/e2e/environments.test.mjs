// The environment flows, against the real binary with its controller on the
// local cluster (make test starts it), so environments really become Ready.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { ADMIN, launch, login, newPage, register, screenshot, unexpectedErrors, uniqueEmail } from './helpers.mjs';

const READY_TIMEOUT_MS = 120_000;
let chrome;
before(async () => {
  chrome = await launch();
});
after(async () => {
  await chrome?.close();
});

function envName(prefix) {
  return `${prefix}-${Date.now().toString(36)}`.slice(0, 40);
}

test('create from a template, watch it become Ready, download the kubeconfig, delete it', async () => {
  const page = await newPage(chrome.browser);
  await register(page, uniqueEmail('env'));
  await page.getByText('No environments yet').waitFor();
  await page.getByRole('link', { name: 'New environment' }).click();

  const name = envName('e2e');
  await page.getByRole('radio', { name: /small/ }).check();
  await page.getByLabel('Name', { exact: true }).fill(name);
  // The debounced preview shows the plain-language summary and the YAML.
  const summary = page.locator('.preview .summary li').first();
  await summary.waitFor();
  await page.getByText('Kubernetes objects (YAML)').click();
  assert.match(await page.locator('.preview .yaml').textContent(), new RegExp(`name: ${name}`));
  await screenshot(page, 'create-environment');

  await page.getByRole('button', { name: 'Create environment' }).click();
  await page.waitForURL(`**/environments/${name}`);
  await page.locator('[data-phase="Ready"]').waitFor({ timeout: READY_TIMEOUT_MS });
  await page.locator('meter').first().waitFor();
  await screenshot(page, 'environment-detail');

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download kubeconfig' }).click()]);
  const kubeconfig = await readFile(await download.path(), 'utf8');
  assert.match(kubeconfig, /kind: Config/);
  assert.match(kubeconfig, new RegExp(`namespace: ${name}`));

  await page.getByRole('link', { name: 'Environments', exact: true }).click();
  await page.locator(`[data-environment="${name}"] [data-phase="Ready"]`).waitFor();
  await screenshot(page, 'environments-list');
  await page.getByRole('link', { name }).click();

  await page.getByRole('button', { name: 'Delete environment' }).click();
  await page.getByLabel(`Type ${name} to confirm`).fill(name);
  await page.getByRole('button', { name: `Delete ${name}` }).click();
  await page.locator('[data-phase="Deleting"]').waitFor();
  await page.getByText(`“${name}” was deleted.`).waitFor({ timeout: READY_TIMEOUT_MS });
  assert.deepEqual(unexpectedErrors(page), []);
  await page.context().close();
});

test('a field error from the server is shown beside its input', async () => {
  const page = await newPage(chrome.browser);
  await register(page, uniqueEmail('badcpu'));
  await page.goto('/environments/new');
  await page.getByLabel('Name', { exact: true }).fill(envName('bad'));
  await page.getByLabel('CPU', { exact: true }).fill('lots');
  await page.locator('#field-quota-cpu-error').waitFor();
  await screenshot(page, 'create-environment-error');
  await page.context().close();
});

test('an admin approves a request over the policy', async () => {
  const admin = await newPage(chrome.browser);
  await login(admin, ADMIN);
  const csrf = (await admin.context().cookies()).find((c) => c.name === 'berth_csrf').value;
  const policy = await (await admin.request.get('/api/v1/admin/policy')).json();
  const put = await admin.request.put('/api/v1/admin/policy', { headers: { 'x-csrf-token': csrf }, data: { ...policy, approval: 'always' } });
  assert.equal(put.status(), 200);

  const member = await newPage(chrome.browser);
  await register(member, uniqueEmail('asker'));
  await member.goto('/environments/new');
  const name = envName('req');
  await member.getByLabel('Name', { exact: true }).fill(name);
  await member.getByRole('button', { name: 'Create environment' }).click();
  await member.getByText('sent to an admin for approval').waitFor();

  await admin.goto('/admin/requests');
  const card = admin.locator('li.card', { hasText: name });
  await card.waitFor();
  await screenshot(admin, 'admin-requests');
  await card.getByRole('button', { name: 'Approve' }).click();
  await admin.getByText('No pending requests').waitFor();

  await member.goto('/');
  await member.locator(`[data-environment="${name}"]`).waitFor({ timeout: READY_TIMEOUT_MS });
  await admin.goto('/admin/audit');
  await admin.getByRole('cell', { name }).first().waitFor();
  await screenshot(admin, 'admin-audit');
  await admin.context().close();
  await member.context().close();
});
