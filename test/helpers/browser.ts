import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { tempDir, type Teardown } from './tmp.js';

/** Debian's chromium, headless, quiet: no network of its own, no updates, no first-run UI. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * A real headless Chromium with a fresh user-data dir, closed with the test. Page errors and
 * console errors are collected so a test can assert the page ran clean (a CSP violation shows
 * up there too).
 */
export async function startBrowser(t: Teardown): Promise<{ context: BrowserContext; page: (viewport?: { width: number; height: number }) => Promise<Page>; errors: string[] }> {
  const userData = tempDir(t, 'chromium-');
  const context = await chromium.launchPersistentContext(userData, { executablePath: CHROMIUM, headless: true, args: ARGS });
  t.teardown(() => context.close());
  const errors: string[] = [];
  const page = async (viewport = { width: 1280, height: 800 }): Promise<Page> => {
    const p = await context.newPage();
    await p.setViewportSize(viewport);
    p.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    p.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
    return p;
  };
  return { context, page, errors };
}

/** Saves a page screenshot into docs/img only when UPDATE_SCREENSHOTS=1 (tracked files stay put in CI). */
export async function docScreenshot(page: Page, file: string): Promise<boolean> {
  if (process.env.UPDATE_SCREENSHOTS !== '1') return false;
  await page.screenshot({ path: file, fullPage: true });
  return true;
}
