// Shared by the end-to-end specs: Debian's Chromium driven by playwright-core
// (never a downloaded browser) against the real berth at $BERTH_URL.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const BASE = process.env.BERTH_URL ?? 'http://127.0.0.1:8080';
export const ADMIN = {
  email: process.env.BERTH_ADMIN_EMAIL ?? 'admin@berth.test',
  password: process.env.BERTH_ADMIN_PASSWORD ?? 'admin-password-for-tests',
};
const SHOTS = join(dirname(fileURLToPath(import.meta.url)), '../../test-artifacts/screenshots');

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

export async function screenshot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
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
