// The log viewer on the environment page, against the real binary, its
// controller and the local cluster, whose fake kubelets log one line every
// two seconds per container ("<time> <namespace>/<pod> <container> line <n>").
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ADMIN, launch, login, newPage, register, screenshot, unexpectedErrors, uniqueEmail } from './helpers.mjs';

const RUNNING_TIMEOUT_MS = 120_000;
// What a typed search may take to show its count over 10,000 lines, measured
// in the browser from the keystroke's input event (it takes tens of ms).
const SEARCH_BOUND_MS = 1000;
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

let chrome;
let owner;
let csrf;
const name = `logs-${Date.now().toString(36)}`.slice(0, 40);
let pod;
let ownerFailures;

// Writes go with the CSRF cookie echoed, as the UI sends them.
async function api(page, method, path, data) {
  const options = { method, headers: { 'x-csrf-token': csrf } };
  if (data !== undefined) options.data = data;
  return page.request.fetch(path, options);
}

// Console errors but the 4xx/5xx answers of other panels (the metrics panel
// answers 503 without Prometheus); the viewer's own answers are checked by
// URL in watchLogAnswers.
function scriptErrors(page) {
  return unexpectedErrors(page).filter((text) => !/Failed to load resource: the server responded with a status of 5\d\d/.test(text));
}

// Records every answer of the logs and workloads endpoints that is a 5xx.
function watchLogAnswers(page) {
  const failed = [];
  page.on('response', (r) => {
    if (r.status() >= 500 && /\/(logs|workloads)$/.test(new URL(r.url()).pathname)) failed.push(`${r.status()} ${r.url()}`);
  });
  return failed;
}

async function apiLines(page, query) {
  const response = await page.request.get(`/api/v1/environments/${name}/pods/${pod}/logs?${query}`);
  assert.equal(response.status(), 200, await response.text());
  return (await response.text()).split('\n').filter((l) => l !== '');
}

// The lines the viewer renders now (it is virtual: those in and near view).
async function shownLines(page) {
  return page.locator('[role="log"] .log-line').allTextContents();
}

function lineNumber(text) {
  return Number(/ line (\d+)$/.exec(text)?.[1] ?? NaN);
}

// How many lines the viewer holds, from its summary ("1,234 lines").
async function lineCount(page) {
  const text = await page.locator('.log-summary').textContent();
  return Number(/([\d,]+) lines?$/.exec(text)?.[1].replaceAll(',', '') ?? NaN);
}

// kubectl with the local cluster's admin kubeconfig: what a test needs to
// change that no member may (a pod's status, deleting a pod under Berth's feet).
async function kubectl(...args) {
  const kubeconfig = process.env.KUBECONFIG ?? join(ROOT, '.berth/cluster/kubeconfig');
  const bin = join(ROOT, '.berth/bin/kubectl');
  assert.ok(existsSync(kubeconfig) && existsSync(bin), `the local cluster is needed: no ${kubeconfig} or ${bin} (scripts/localcluster.sh up)`);
  await promisify(execFile)(bin, ['--kubeconfig', kubeconfig, '-n', name, ...args]);
}

before(async () => {
  chrome = await launch();
  owner = await newPage(chrome.browser);
  ownerFailures = watchLogAnswers(owner);
  await register(owner, uniqueEmail('logs'));
  csrf = (await owner.context().cookies()).find((c) => c.name === 'berth_csrf').value;
  // Another spec may have left the policy asking for approval: this
  // environment is made directly, and the policy put back right after.
  const admin = await newPage(chrome.browser);
  await login(admin, ADMIN);
  const adminCsrf = (await admin.context().cookies()).find((c) => c.name === 'berth_csrf').value;
  const policy = await (await admin.request.get('/api/v1/admin/policy')).json();
  const setApproval = async (approval) => {
    const put = await admin.request.put('/api/v1/admin/policy', { headers: { 'x-csrf-token': adminCsrf }, data: { ...policy, approval } });
    assert.equal(put.status(), 200, await put.text());
  };
  await setApproval('never');
  try {
    const created = await api(owner, 'POST', '/api/v1/environments', {
      name,
      template: 'small',
      apps: [{ name: 'web', image: 'nginx:1.27', replicas: 1, port: 8080, resources: { cpu: '100m', memory: '64Mi' } }],
    });
    assert.equal(created.status(), 201, await created.text());
  } finally {
    await setApproval(policy.approval);
    await admin.context().close();
  }
  const deadline = Date.now() + RUNNING_TIMEOUT_MS;
  while (!pod) {
    const workloads = await (await owner.request.get(`/api/v1/environments/${name}/workloads`)).json();
    pod = workloads.pods?.find((p) => p.phase === 'Running')?.name;
    if (!pod) {
      assert.ok(Date.now() < deadline, `no pod of ${name} ran within ${RUNNING_TIMEOUT_MS / 1000} s: ${JSON.stringify(workloads)}`);
      await owner.waitForTimeout(500);
    }
  }
  // Two lines at least (one every 2 s), so that the viewer has something to compare.
  const linesDeadline = Date.now() + 10_000;
  while ((await apiLines(owner, 'container=web')).length < 2) {
    assert.ok(Date.now() < linesDeadline, `${pod} logged fewer than 2 lines in 10 s`);
    await owner.waitForTimeout(500);
  }
});

after(async () => {
  if (owner) {
    await api(owner, 'DELETE', `/api/v1/environments/${name}`);
    await owner.context().close();
  }
  await chrome?.close();
});

test('a member reads the lines the API returns, follows new ones, searches and downloads them', async () => {
  const page = owner;
  // The same lines as the API: what the viewer shows lies between two reads of it.
  const first = await apiLines(page, 'container=web&tailLines=1000');
  await page.goto(`/environments/${name}`);
  const log = page.getByRole('log', { name: `Log lines of ${pod}, container web` });
  await log.waitFor();
  assert.equal(await page.getByLabel('Pod', { exact: true }).inputValue(), pod);
  assert.equal(await page.getByLabel('Container', { exact: true }).inputValue(), 'web');
  await page.locator('.log-summary', { hasText: /\d+ lines?$/ }).waitFor();
  await page.waitForFunction(() => document.querySelector('[role="log"] .log-line'));
  const shown = await shownLines(page);
  const held = await lineCount(page);
  const second = await apiLines(page, 'container=web&tailLines=1000');
  assert.ok(first.length <= held && held <= second.length, `the viewer holds ${held} lines, the API gave ${first.length} then ${second.length}`);
  const at = second.indexOf(shown[0]);
  assert.ok(at >= 0, `${shown[0]} is not among the API's lines`);
  assert.deepEqual(shown, second.slice(at, at + shown.length));
  assert.ok(shown.every((l) => l.includes(`${name}/${pod} web line `)), shown.join('\n'));
  await screenshot(page, 'logs-1280');

  // Follow: a new line is on screen within 2 s of being logged. The fake
  // kubelet logs line n at exactly the time it prints (the container's start,
  // whole seconds, plus 2n s), and this machine's clock is the kubelet's.
  const opened = page.waitForRequest((r) => r.url().includes('/logs?') && r.url().includes('follow=true'));
  await page.getByLabel('Follow', { exact: true }).check();
  const followRequest = await opened;
  await page.getByText('Following: new lines appear as they are logged.').waitFor();
  const last = lineNumber((await shownLines(page)).at(-1));
  const seen = await page.waitForFunction(
    (n) => {
      const line = [...document.querySelectorAll('[role="log"] .log-line')].find((el) => el.textContent.endsWith(` line ${n}`));
      return line ? { at: Date.now(), text: line.textContent } : false;
    },
    last + 1,
    { timeout: 5000 },
  );
  const { at: shownAt, text } = await seen.jsonValue();
  const latency = shownAt - Date.parse(text.split(' ')[0]);
  console.log(`followed: line ${last + 1} shown ${latency} ms after it was logged`);
  assert.ok(latency < 2000, `a followed line took ${latency} ms to show`);

  // Turning follow off closes the stream.
  const closed = page.waitForEvent('requestfailed', (r) => r === followRequest);
  await page.getByLabel('Follow', { exact: true }).uncheck();
  assert.match((await closed).failure()?.errorText ?? '', /ABORTED/);
  await page.getByText('Stopped following').waitFor();

  // Search: only matching lines, the match highlighted and counted.
  const all = await shownLines(page);
  const term = `line ${lineNumber(all.at(-1))}`;
  const expected = all.filter((l) => l.toLowerCase().includes(term)).length;
  await page.getByLabel('Search', { exact: true }).fill(term);
  await page.locator('.log-summary', { hasText: `${expected} ${expected === 1 ? 'match' : 'matches'} in ${expected} of ${all.length} lines` }).waitFor();
  const found = await shownLines(page);
  assert.equal(found.length, expected);
  assert.ok(found.every((l) => l.includes(term)));
  assert.equal(await log.locator('mark').first().textContent(), term);
  await screenshot(page, 'logs-search');

  // The download is what is shown, named after the pod and container.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download' }).click()]);
  assert.equal(download.suggestedFilename(), `${pod}_web.log`);
  assert.equal(await readFile(await download.path(), 'utf8'), `${found.join('\n')}\n`);

  // Narrow: no sideways scrolling at 390 px, the controls still usable.
  await page.getByLabel('Search', { exact: true }).fill('');
  await page.setViewportSize({ width: 390, height: 844 });
  await log.scrollIntoViewIfNeeded();
  // (Other panels' tables are not this spec's business: the viewer and everything in it fit.)
  const overflow = await page.locator('.log-viewer').evaluate((section) =>
    [section, ...section.querySelectorAll('*')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5).map((e) => e.className || e.tagName),
  );
  assert.deepEqual(overflow, [], 'the log viewer is wider than 390 px');
  await screenshot(page, 'logs-390');
  await page.setViewportSize({ width: 1280, height: 900 });
  assert.deepEqual(scriptErrors(page), []);
  assert.deepEqual(ownerFailures, []);
});

test('dark mode keeps the log readable', async () => {
  const page = await newPage(chrome.browser, 'dark');
  await page.context().addCookies(await owner.context().cookies());
  await page.goto(`/environments/${name}`);
  const line = page.locator('[role="log"] .log-line').first();
  await line.waitFor();
  // WCAG contrast of the line's text on the log's background.
  const ratio = await line.evaluate((el) => {
    const rgb = (c) => c.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number);
    const lum = ([r, g, b]) => {
      const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const fg = lum(rgb(getComputedStyle(el).color));
    const bg = lum(rgb(getComputedStyle(el.closest('[role="log"]')).backgroundColor));
    return (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
  });
  assert.ok(ratio >= 7, `log text contrast in dark mode is ${ratio.toFixed(1)}:1`);
  await screenshot(page, 'logs-dark');
  await page.context().close();
});

test('a viewer removed while following is told so; someone not a member gets neither the viewer nor the logs', async () => {
  const page = await newPage(chrome.browser);
  const email = uniqueEmail('viewer');
  await register(page, email);
  const added = await api(owner, 'PUT', `/api/v1/environments/${name}/members/${encodeURIComponent(email)}`, { role: 'viewer' });
  assert.equal(added.status(), 200, await added.text());
  await page.goto(`/environments/${name}`);
  await page.getByLabel('Follow', { exact: true }).check();
  await page.getByText('Following: new lines appear as they are logged.').waitFor();

  // Removed, the server ends the stream; the viewer's reconnect meets a 404 and finds the environment gone too.
  const removed = await api(owner, 'DELETE', `/api/v1/environments/${name}/members/${encodeURIComponent(email)}`);
  assert.equal(removed.status(), 204, await removed.text());
  await page
    .getByRole('alert')
    .filter({ hasText: `You are not a member of “${name}” (any more), or it was deleted: its logs are not available to you.` })
    .waitFor({ timeout: 15_000 });
  await screenshot(page, 'logs-not-a-member');

  await page.goto(`/environments/${name}`);
  await page.getByText(`No environment “${name}”`).waitFor();
  assert.equal(await page.getByRole('log').count(), 0);
  const response = await page.request.get(`/api/v1/environments/${name}/pods/${pod}/logs?container=web`);
  assert.equal(response.status(), 404);
  assert.equal((await response.json()).error.code, 'not_found');
  await page.context().close();
});

test('a pod with two containers: the picker offers both and reads the one picked', async () => {
  // Made as the admin (any way into the namespace would do); named to sort after the app's pod.
  const two = 'zz-two';
  const container = (n) => ({
    name: n,
    image: 'nginx:1.27',
    securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
    resources: { requests: { cpu: '50m', memory: '32Mi' }, limits: { cpu: '50m', memory: '32Mi' } },
  });
  const manifest = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: two, namespace: name },
    spec: { securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } }, containers: [container('app'), container('sidecar')] },
  };
  const dir = mkdtempSync(join(tmpdir(), 'berth-logs-'));
  const file = join(dir, 'pod.json');
  writeFileSync(file, JSON.stringify(manifest));
  try {
    await kubectl('apply', '-f', file);
    const page = owner;
    const deadline = Date.now() + RUNNING_TIMEOUT_MS;
    for (;;) {
      const workloads = await (await page.request.get(`/api/v1/environments/${name}/workloads`)).json();
      const listed = workloads.pods.find((p) => p.name === two);
      if (listed?.phase === 'Running') {
        assert.deepEqual(listed.containers, ['app', 'sidecar']);
        break;
      }
      assert.ok(Date.now() < deadline, `${two} did not run: ${JSON.stringify(workloads.pods)}`);
      await page.waitForTimeout(500);
    }
    await page.goto(`/environments/${name}`);
    await page.getByLabel('Pod', { exact: true }).selectOption(two);
    const picker = page.getByLabel('Container', { exact: true });
    assert.deepEqual(await picker.locator('option').allTextContents(), ['app', 'sidecar']);
    await page.getByRole('log', { name: `Log lines of ${two}, container app` }).locator('.log-line').first().waitFor();
    await picker.selectOption('sidecar');
    const log = page.getByRole('log', { name: `Log lines of ${two}, container sidecar` });
    await log.locator('.log-line').first().waitFor();
    const shown = await shownLines(page);
    assert.ok(shown.every((l) => l.includes(`${name}/${two} sidecar line `)), shown.join('\n'));
  } finally {
    await kubectl('delete', 'pod', two, '--wait=false', '--ignore-not-found');
    rmSync(dir, { recursive: true });
  }
});

test('10,000 lines: the page stays responsive and a typed search updates within the bound', async () => {
  // The fake kubelet logs from the container's start: moved six hours back
  // (as the admin, through pods/status) the container has 10,800 lines.
  const startedAt = new Date(Date.now() - 6 * 3600 * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  const patch = [{ op: 'replace', path: '/status/containerStatuses/0/state/running/startedAt', value: startedAt }];
  await kubectl('patch', 'pod', pod, '--subresource=status', '--type=json', '-p', JSON.stringify(patch));
  const page = owner;
  await page.goto(`/environments/${name}`);
  await page.getByRole('log').waitFor();
  const loadStart = Date.now();
  await page.getByLabel('Last lines', { exact: true }).selectOption('10000');
  await page.locator('.log-summary', { hasText: /^10,000 lines$/ }).waitFor({ timeout: 30_000 });
  console.log(`10,000 lines read and shown in ${Date.now() - loadStart} ms`);
  const rendered = await page.locator('[role="log"] .log-line').count();
  assert.ok(rendered < 200, `${rendered} line elements in the page: not virtual`);

  // Follow on top of them.
  await page.getByLabel('Follow', { exact: true }).check();
  await page.getByText('Following: new lines appear as they are logged.').waitFor();
  await page.locator('.log-summary', { hasText: /^10,0\d\d lines$/ }).waitFor();
  // Scrolling up pauses the auto-scroll; jumping back resumes it.
  await page.getByRole('log').evaluate((el) => el.scrollTo({ top: 0 }));
  const jump = page.getByRole('button', { name: 'Paused: jump to the latest line' });
  await jump.waitFor();
  const before = await lineCount(page);
  await page.waitForFunction((n) => !document.querySelector('.log-summary').textContent.endsWith(` ${n} lines`), before);
  assert.equal(await page.getByRole('log').evaluate((el) => el.scrollTop), 0, 'a new line scrolled the log while the reader was up');
  await jump.click();
  await page.waitForFunction((el) => el.scrollHeight - el.scrollTop - el.clientHeight < 30, await page.getByRole('log').elementHandle());
  // The same from the keyboard: Home in the focused log pauses, End resumes.
  await page.getByRole('log').focus();
  await page.keyboard.press('Home');
  await jump.waitFor();
  await page.keyboard.press('End');
  await jump.waitFor({ state: 'hidden' });

  // Type a search: measured in the browser from the input event to the count on screen.
  await page.evaluate(() => {
    const input = document.getElementById('log-search');
    const summary = document.querySelector('.log-summary');
    window.searchTiming = new Promise((resolve) => {
      let typed = 0;
      input.addEventListener('input', () => (typed ||= performance.now()), { capture: true });
      new MutationObserver((_, observer) => {
        if (typed && /match/.test(summary.textContent)) {
          observer.disconnect();
          resolve(performance.now() - typed);
        }
      }).observe(summary, { childList: true, subtree: true, characterData: true });
    });
  });
  await page.getByLabel('Search', { exact: true }).pressSequentially('line 99', { delay: 20 });
  const searchMs = await page.evaluate(() => window.searchTiming);
  console.log(`typed search over 10,000 lines shown ${searchMs.toFixed(0)} ms after the keystroke`);
  assert.ok(searchMs < SEARCH_BOUND_MS, `the search took ${searchMs} ms`);
  // Fewer lines shown is not the reader scrolling up: following the end goes on.
  assert.equal(await jump.count(), 0, 'a search paused the auto-scroll');
  // "line 99" matches lines 99, 990-999, 9900-9999 and 10990-10999 of those kept.
  const summary = await page.locator('.log-summary').textContent();
  assert.match(summary, /^\d+ match(es)? in \d+ of 10,0\d\d lines$/);
  // Scrolling the 10,000 lines keeps frames coming: the longest gap between two frames while scrolling.
  const worstFrameMs = await page.getByRole('log').evaluate(async (el) => {
    let worst = 0;
    let previous = performance.now();
    for (let i = 0; i < 30; i++) {
      el.scrollTop = (el.scrollHeight * i) / 30;
      await new Promise((r) => requestAnimationFrame(r));
      const now = performance.now();
      worst = Math.max(worst, now - previous);
      previous = now;
    }
    return worst;
  });
  console.log(`longest frame while scrolling: ${worstFrameMs.toFixed(0)} ms`);
  assert.ok(worstFrameMs < 500, `a frame took ${worstFrameMs} ms while scrolling`);
  await screenshot(page, 'logs-10000');

  // Leaving the page closes the followed stream.
  const closed = page.waitForEvent('requestfailed', (r) => r.url().includes('follow=true'));
  await page.getByRole('link', { name: 'Environments', exact: true }).click();
  assert.match((await closed).failure()?.errorText ?? '', /ABORTED/);
  assert.deepEqual(scriptErrors(page), []);
  assert.deepEqual(ownerFailures, []);
});

test('a followed pod that is deleted is named as gone', async () => {
  const page = owner;
  await page.goto(`/environments/${name}`);
  await page.getByRole('log').waitFor();
  await page.getByLabel('Follow', { exact: true }).check();
  await page.getByText('Following: new lines appear as they are logged.').waitFor();
  await page.locator('[role="log"] .log-line').first().waitFor();
  // Replacing the lines for the follow is not the reader scrolling up.
  assert.equal(await page.getByRole('button', { name: 'Paused: jump to the latest line' }).count(), 0);
  // The kubelet ends the stream of a pod being deleted; the viewer's reconnect then meets a 404.
  await kubectl('delete', 'pod', pod, '--wait=false');
  await page.getByRole('alert').filter({ hasText: `Pod “${pod}” no longer exists in “${name}”. Pick another pod.` }).waitFor({ timeout: 15_000 });
  await screenshot(page, 'logs-pod-gone');
  assert.deepEqual(scriptErrors(page), []);
});
