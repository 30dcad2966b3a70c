// The environment page's metrics charts against the real Prometheus that
// `make test` starts (BERTH_TEST_PROMETHEUS_URL; scripts/web.sh lists this
// berth in its file_sd directory BERTH_TEST_PROMETHEUS_TARGETS), scraping the
// local cluster's fake kubelets and Berth's own /metrics.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ADMIN, BASE, launch, login, newPage, register, screenshot, unexpectedErrors, uniqueEmail } from './helpers.mjs';

const TIMEOUT_MS = 150_000;
let chrome;
before(async () => {
  chrome = await launch();
});
after(async () => {
  await chrome?.close();
});

function requirePrometheus() {
  assert.ok(
    process.env.BERTH_TEST_PROMETHEUS_URL && process.env.BERTH_TEST_PROMETHEUS_TARGETS,
    'BERTH_TEST_PROMETHEUS_URL and BERTH_TEST_PROMETHEUS_TARGETS must name the test Prometheus and its file_sd directory: ' +
      'run `make test`, or `d=$(mktemp -d); PROMETHEUS_SCRAPE_INTERVAL=1s scripts/prometheus.sh start $d` and export ' +
      'BERTH_TEST_PROMETHEUS_URL=<its URL> BERTH_TEST_PROMETHEUS_TARGETS=$d/targets before `scripts/web.sh e2e`',
  );
}

async function csrf(page) {
  return (await page.context().cookies()).find((c) => c.name === 'berth_csrf').value;
}

function envName(prefix) {
  return `${prefix}-${Date.now().toString(36)}`.slice(0, 40);
}

/**
 * Sets the policy's approval to `never` (another spec may have left it
 * asking for approval; these environments are made directly); the function
 * returned puts the policy back.
 */
async function withoutApproval() {
  const admin = await newPage(chrome.browser);
  await login(admin, ADMIN);
  const policy = await (await admin.request.get('/api/v1/admin/policy')).json();
  const put = async (approval) => {
    const answer = await admin.request.put('/api/v1/admin/policy', { headers: { 'x-csrf-token': await csrf(admin) }, data: { ...policy, approval } });
    assert.equal(answer.status(), 200);
  };
  await put('never');
  return async () => {
    await put(policy.approval);
    await admin.context().close();
  };
}

/** A chart's text alternative, once it reads `pattern` (the page refreshes its metrics every 15 s). */
async function summary(page, chart, pattern) {
  const locator = page.locator(`[data-chart="${chart}"] .chart-summary`, { hasText: pattern });
  await locator.waitFor({ timeout: TIMEOUT_MS });
  return locator.textContent();
}

test('charts of CPU, memory, pods and restarts against the quota, and the quota nearly full banner', async () => {
  requirePrometheus();
  const restorePolicy = await withoutApproval();

  const page = await newPage(chrome.browser);
  await register(page, uniqueEmail('metrics'));
  const app = (replicas) => ({ name: 'web', image: 'nginx:1.27', replicas, resources: { cpu: '100m', memory: '128Mi' } });
  // Two pods of a quota of two: full. One pod of twenty: roomy.
  const full = envName('e2e-full');
  const roomy = envName('e2e-roomy');
  const specs = [
    { name: full, template: 'small', quota: { pods: 2 }, apps: [app(2)] },
    { name: roomy, template: 'small', apps: [app(1)] },
  ];
  try {
    for (const spec of specs) {
      const created = await page.request.post('/api/v1/environments', { headers: { 'x-csrf-token': await csrf(page) }, data: spec });
      assert.equal(created.status(), 201, await created.text());
    }

    await page.goto(`/environments/${full}`);
    await page.locator('[data-phase="Ready"]').waitFor({ timeout: TIMEOUT_MS });
    const banner = page.getByTestId('quota-banner');
    await banner.filter({ hasText: 'pods: 2 of 2 used (100 %)' }).waitFor({ timeout: TIMEOUT_MS });
    assert.match(await banner.textContent(), /^Quota nearly full\./);

    // Each chart draws once Prometheus has the pods' cAdvisor series and Berth's own.
    const cpu = await summary(page, 'cpu', /CPU: latest [1-9]/);
    assert.match(cpu, /quota requests\.cpu = limits\.cpu 2 cores \((< 1|\d+) %\)/);
    const memory = await summary(page, 'memory', /Memory: latest [1-9]/);
    assert.match(memory, /quota requests\.memory = limits\.memory 4 GiB \((< 1|\d+) %\)/);
    assert.equal(await summary(page, 'pods', /Pods: latest 2,/), 'Pods: latest 2, quota pods 2 (100 %).');
    await summary(page, 'restarts', /Container restarts: latest \d+\./);
    for (const chart of ['cpu', 'memory', 'pods', 'restarts']) {
      const plot = page.locator(`[data-chart="${chart}"] .plot`);
      assert.ok(await plot.locator('canvas').isVisible(), `${chart} has a drawn chart`);
      assert.equal(await plot.getAttribute('role'), 'img');
    }
    // The quota is a line of its own, named in the chart's legend.
    await page.locator('[data-chart="cpu"] .chart-legend', { hasText: 'quota requests.cpu = limits.cpu' }).waitFor();
    await screenshot(page, 'metrics');

    // Range buttons work from the keyboard and say which is chosen.
    const sixHours = page.getByRole('group', { name: 'Time range' }).getByRole('button', { name: '6 h' });
    await sixHours.focus();
    await page.keyboard.press('Enter');
    assert.equal(await sixHours.getAttribute('aria-pressed'), 'true');
    await page.getByRole('img', { name: 'CPU over the last 6 h' }).waitFor({ timeout: TIMEOUT_MS });
    await summary(page, 'cpu', /CPU: latest [1-9]/);

    // A phone's width: the banner and the panel fit, the charts shrink to the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForFunction(() => {
      const plot = document.querySelector('[data-chart="cpu"] .plot canvas');
      return plot && plot.getBoundingClientRect().right <= 390;
    });
    const overflowing = await page.evaluate(() =>
      [...document.querySelectorAll('.quota-banner, .quota-banner *, .metrics, .metrics *')]
        .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 0.5)
        .map((el) => `${el.tagName.toLowerCase()}.${el.className}`),
    );
    assert.deepEqual(overflowing, [], 'nothing of the banner or the metrics panel reaches past 390 px');
    await screenshot(page, 'metrics-390');

    // Dark mode: the charts are redrawn in the dark theme's colours.
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.locator('[data-chart="cpu"] .plot canvas').waitFor();
    await screenshot(page, 'metrics-dark');
    await page.emulateMedia({ colorScheme: 'light' });

    // Below 90 % of every limit there is no banner.
    await page.goto(`/environments/${roomy}`);
    await page.locator('[data-phase="Ready"]').waitFor({ timeout: TIMEOUT_MS });
    await page.getByText('1 of 20').waitFor({ timeout: TIMEOUT_MS });
    await summary(page, 'pods', /Pods: latest 1, quota pods 20 \(5 %\)/);
    assert.equal(await page.getByTestId('quota-banner').count(), 0);
    assert.deepEqual(unexpectedErrors(page), []);
  } catch (err) {
    // For the reader of the failure: its own checks must not hide `err`.
    await screenshot(page, 'metrics-failure').catch(() => {});
    throw err;
  } finally {
    for (const { name } of specs) await page.request.delete(`/api/v1/environments/${name}`, { headers: { 'x-csrf-token': await csrf(page) } });
    await restorePolicy();
    await page.context().close();
  }
});

/**
 * A second berth (BERTH_E2E_BIN, as scripts/web.sh sets it) on the same
 * cluster with no Prometheus configured; its base URL and a stop function.
 */
async function serverWithoutPrometheus() {
  const bin = process.env.BERTH_E2E_BIN;
  assert.ok(bin, 'BERTH_E2E_BIN must name the berth binary (scripts/web.sh e2e sets it)');
  const dir = mkdtempSync(join(tmpdir(), 'berth-e2e-noprom-'));
  const env = {
    ...process.env,
    BERTH_LISTEN: '127.0.0.1:0',
    BERTH_KUBE_LISTEN: '127.0.0.1:0',
    BERTH_DATABASE_URL: `sqlite://${dir}/berth.db?mode=rwc`,
    BERTH_ADMIN_EMAIL: ADMIN.email,
    BERTH_ADMIN_PASSWORD: ADMIN.password,
  };
  delete env.BERTH_PROMETHEUS_URL;
  // From the checkout's root, where berth finds the local cluster as the first server does.
  const child = spawn(bin, ['serve'], { cwd: join(dirname(fileURLToPath(import.meta.url)), '../..'), env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the second berth did not start within 30 s; its log:\n${log}`)), 30_000);
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
    child.on('exit', (code) => reject(new Error(`the second berth exited (${code}); its log:\n${log}`)));
  });
  return {
    url,
    stop() {
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('without Prometheus the panel says why there are no charts', async () => {
  const server = await serverWithoutPrometheus();
  const restorePolicy = await withoutApproval();
  // The environment is made through the main server; both see the cluster's environments.
  const owner = await newPage(chrome.browser);
  await register(owner, uniqueEmail('noprom'));
  const name = envName('e2e-noprom');
  const created = await owner.request.post('/api/v1/environments', { headers: { 'x-csrf-token': await csrf(owner) }, data: { name, template: 'small' } });
  const context = await chrome.browser.newContext({ baseURL: server.url });
  try {
    assert.equal(created.status(), 201, await created.text());
    // An admin of the second server sees every environment, as soon as its watch cache has it.
    const page = await context.newPage();
    await page.goto('/login');
    await page.getByLabel('Email').fill(ADMIN.email);
    await page.getByLabel('Password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByTestId('current-user').waitFor();
    const unavailable = page.locator('.metrics', { hasText: 'No charts: no Prometheus is configured' });
    const deadline = Date.now() + 60_000;
    for (;;) {
      await page.goto(`/environments/${name}`);
      if (await unavailable.waitFor({ timeout: 5_000 }).then(() => true, () => false)) break;
      assert.ok(Date.now() < deadline, `the second server never showed ${name} with the unavailable notice`);
    }
    assert.match(await unavailable.textContent(), /Prometheus/);
    assert.equal(await page.locator('.metrics canvas').count(), 0);
    await screenshot(page, 'metrics-unavailable');
  } finally {
    await owner.request.delete(`${BASE}/api/v1/environments/${name}`, { headers: { 'x-csrf-token': await csrf(owner) } });
    await restorePolicy();
    await context.close();
    await owner.context().close();
    server.stop();
  }
});
