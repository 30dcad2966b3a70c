// Shared by the end-to-end specs: Debian's Chromium driven by playwright-core
// (never a downloaded browser) against the real berth at $BERTH_URL.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const BASE = process.env.BERTH_URL ?? 'http://127.0.0.1:8080';
export const ADMIN = {
  email: process.env.BERTH_ADMIN_EMAIL ?? 'admin@berth.test',
  password: process.env.BERTH_ADMIN_PASSWORD ?? 'admin-password-for-tests',
};
/** Where screenshots go: scripts/web.sh makes a directory and prints it; outside the checkout. */
const SHOTS = process.env.BERTH_E2E_SHOTS ?? join(tmpdir(), 'berth-e2e-screenshots');
/** The widths every page state is shown at: a laptop, and a phone (where nothing may scroll sideways). */
const WIDTHS = [1280, 390];
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

// launch() starts Chromium headless with a fresh, throwaway profile of its own.
export async function launch() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    browser,
    async close() {
      await browser.close();
    },
  };
}

/**
 * A fresh page (own cookies) that records console errors, so a spec can
 * assert that the strict CSP refused nothing and no script failed.
 */
export async function newPage(browser, colorScheme = 'light') {
  const context = await browser.newContext({ baseURL: BASE, acceptDownloads: true, colorScheme, viewport: { width: 1280, height: 900 } });
  return recordErrors(await context.newPage());
}

/** Records the page's console errors in `page.consoleErrors` (for a second tab of a context). */
export function recordErrors(page) {
  page.consoleErrors = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') page.consoleErrors.push(msg.text());
  });
  page.on('pageerror', (err) => page.consoleErrors.push(String(err)));
  return page;
}

/**
 * Records a page state, as every spec does at each state it reaches: axe-core
 * finds nothing serious or critical, a screenshot at each of WIDTHS, and at
 * 390 px the page does not scroll sideways. The viewport is restored after.
 */
export async function screenshot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  const viewport = page.viewportSize();
  try {
    for (const width of WIDTHS) {
      await page.setViewportSize({ width, height: viewport?.height ?? 900 });
      // A frame for the layout to follow the new width.
      await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
      await page.screenshot({ path: join(SHOTS, `${name}-${width}.png`), fullPage: true });
      if (width < 640) {
        const { scrollWidth, innerWidth, wide } = await page.evaluate(() => ({
          scrollWidth: document.scrollingElement.scrollWidth,
          innerWidth: window.innerWidth,
          // What sticks out, to say where to look.
          wide: [...document.querySelectorAll('body *')]
            .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
            .slice(0, 5)
            .map((el) => `${el.tagName.toLowerCase()}${el.className && typeof el.className === 'string' ? '.' + el.className.split(' ').join('.') : ''} (${Math.round(el.getBoundingClientRect().right)} px)`),
        }));
        assert.ok(scrollWidth <= innerWidth, `${name} scrolls sideways at ${width} px: ${scrollWidth} px wide; widest: ${wide.join(', ')}`);
      }
      await assertAccessible(page, `${name} at ${width} px`);
    }
  } finally {
    if (viewport) await page.setViewportSize(viewport);
  }
}

/** axe-core on the page as it is now: no serious or critical violation. */
export async function assertAccessible(page, what) {
  // Evaluated through the DevTools protocol, which the page's CSP does not govern.
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const results = await window.axe.run(document, { resultTypes: ['violations'] });
    return results.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join('; ')})`);
  });
  assert.deepEqual(violations, [], `axe-core on ${what}`);
}

export function uniqueEmail(prefix) {
  return `${prefix}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
}

export async function register(page, email, password = 'correct horse battery') {
  await page.goto('/register');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByTestId('current-user').waitFor();
}

export async function login(page, { email, password }) {
  await page.goto('/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByTestId('current-user').waitFor();
}

/** Console errors other than the 4xx answers a spec provokes on purpose. */
export function unexpectedErrors(page) {
  return page.consoleErrors.filter((text) => !/Failed to load resource: the server responded with a status of 4\d\d/.test(text));
}

/** The CSRF header a cookie-authenticated write through `page.request` must send. */
export async function csrfHeaders(page) {
  const cookie = (await page.context().cookies()).find((c) => c.name === 'berth_csrf');
  assert(cookie, 'no berth_csrf cookie: is the page logged in?');
  return { 'x-csrf-token': cookie.value };
}
