// What every browser test file shares: the real `switchboard` binary on a free port with a
// workspace (an admin, agents Lan and Minh, a live-chat inbox, quick replies), a customer's page
// on another origin with the widget, Chromium, and helpers. `useWorld()` in a test file starts it
// before its tests and stops it after; the bindings below are filled in by then.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const root = path.resolve(import.meta.dirname, '../..');
export const bin = process.env.SWITCHBOARD_BIN ?? path.join(root, 'target/debug/switchboard');
/** The environment for the binary: ours, less SWITCHBOARD_BIN (the server refuses unknown SWITCHBOARD_* settings). */
export function serverEnv(extra = {}) {
  const { SWITCHBOARD_BIN: _, ...env } = process.env;
  return { ...env, ...extra };
}
export const shots = path.join(root, 'test-artifacts/screenshots');
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const PASSWORD = 'correct horse battery';
export const SHIP = 'Shop giao hàng toàn quốc trong 2–4 ngày.';
export const SHIPFREE = 'Miễn phí giao hàng cho đơn từ 300.000đ.';

let server, hostPage, dataDir;
export let browser, base, pageUrl;
export const ids = {};

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export async function call(method, url, token, body) {
  const r = await fetch(base + url, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const j = await r.json().catch(() => null);
  assert.ok(r.ok, `${method} ${url} → ${r.status} ${JSON.stringify(j)}`);
  return j;
}

async function waitForServer() {
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(base + '/healthz');
      if (r.ok) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the server did not start');
}

export function useWorld() {
before(async () => {
  mkdirSync(shots, { recursive: true });
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'sb-browser-'));
  // Many sign-ins from one address in a few seconds: lift the per-minute login limit for the test.
  const env = serverEnv({ SWITCHBOARD_DATA_DIR: dataDir, SWITCHBOARD_LOG: 'warn', SWITCHBOARD_LIMITS__LOGIN_PER_MINUTE: '1000' });
  const add = spawnSync(bin, ['user', 'add', '--email', 'admin@shop.vn', '--name', 'Admin', '--role', 'admin', '--password-stdin'], { input: PASSWORD, env });
  assert.equal(add.status, 0, `user add failed: ${add.stderr}`);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(bin, ['serve'], { env: { ...env, SWITCHBOARD_BIND: `127.0.0.1:${port}` }, stdio: ['ignore', 'inherit', 'inherit'] });
  await waitForServer();

  const admin = (await call('POST', '/api/v1/auth/login', null, { email: 'admin@shop.vn', password: PASSWORD })).token;
  for (const [key, email, name] of [
    ['lan', 'lan@shop.vn', 'Lan'],
    ['minh', 'minh@shop.vn', 'Minh'],
  ]) {
    ids[key] = (await call('POST', '/api/v1/agents', admin, { email, name, role: 'agent', password: PASSWORD })).id;
  }
  ids.inbox = (await call('POST', '/api/v1/inboxes', admin, { name: 'Website', channel: 'livechat' })).id;
  await call('PUT', `/api/v1/inboxes/${ids.inbox}/members`, admin, { agent_ids: [ids.lan, ids.minh] });
  for (const [code, text] of [
    ['ship', SHIP],
    ['shipfree', SHIPFREE],
    ['hello', 'Xin chào! Shop có thể giúp gì ạ?'],
  ]) {
    await call('POST', '/api/v1/quick-replies', admin, { code, text });
  }

  // The customer's own site, on another origin, with the snippet.
  const html = (inbox) => `<!doctype html><html><head><meta charset="utf-8"><title>Shop</title>
    <style>body{font-family:serif} button{background:red!important}</style></head>
    <body><h1>Áo sơ mi</h1><p>A shop page.</p>
    <script src="${base}/widget.js" data-inbox="${inbox}" data-lang="en" async></script></body></html>`;
  const hostPort = await freePort();
  hostPage = http.createServer((req, res) => {
    const inbox = new URL(req.url, 'http://x').searchParams.get('inbox') ?? ids.inbox;
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html(inbox));
  });
  await new Promise((r) => hostPage.listen(hostPort, '127.0.0.1', r));
  pageUrl = `http://127.0.0.1:${hostPort}/`;

  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  hostPage?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});
}

/** A phone: 390×844, touch, as a mobile browser lays pages out. */
export const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };
/** A laptop screen. */
export const DESKTOP = { viewport: { width: 1440, height: 900 } };

/** An agent signed in, on the conversations screen, connected. `device`: PHONE, DESKTOP or context options. */
export async function agentPage(email, locale = 'en-US', device = { viewport: { width: 1400, height: 860 } }, init) {
  const ctx = await browser.newContext({ locale, ...device });
  if (init) await ctx.addInitScript(init);
  const page = await ctx.newPage();
  await page.goto(base + '/');
  await page.locator('input[name=email]').fill(email);
  await page.locator('input[name=password]').fill(PASSWORD);
  await page.locator('button[type=submit]').click();
  await page.getByTestId('conversation-list').waitFor();
  await page.getByTestId('connection').filter({ hasText: /Online|Trực tuyến/ }).waitFor({ state: 'attached' });
  return page;
}

/**
 * Waits until `fn(arg)`, run in the page (it may be async), gives something truthy, and returns
 * it: polled every 50 ms for at most 10 s (Playwright's waitForFunction does not await a promise).
 */
export async function pageUntil(page, what, fn, arg) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const v = await page.evaluate(fn, arg);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The page scrolls sideways (something is wider than the screen)? */
export async function noSidewaysScroll(page, where) {
  const [sw, iw] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert.ok(sw <= iw, `${where}: the page is ${sw}px wide on a ${iw}px screen`);
}

/** axe-core in the page (open shadow roots included): no critical or serious violation. */
export async function axeAudit(page, where, context = null) {
  await page.addScriptTag({ path: path.join(root, 'web/node_modules/axe-core/axe.min.js') });
  const result = await page.evaluate((ctx) => window.axe.run(ctx ?? document, { resultTypes: ['violations'] }), context);
  const bad = result.violations.filter((v) => v.impact === 'critical' || v.impact === 'serious');
  const text = bad.map((v) => `${v.impact} ${v.id}: ${v.help}\n    ${v.nodes.slice(0, 4).map((n) => n.target.join(' ') + ' — ' + n.failureSummary.split('\n').slice(0, 2).join(' ')).join('\n    ')}`).join('\n  ');
  assert.equal(bad.length, 0, `${where}: axe found\n  ${text}`);
}

/** In the agent's page: record sounds played and notifications shown; let the test hide the tab. */
export function recorder() {
  window.__sounds = [];
  window.addEventListener('sb-sound', (e) => window.__sounds.push(e.detail));
  window.__notes = [];
  if (window.Notification) {
    window.Notification = new Proxy(window.Notification, {
      construct(target, args) {
        window.__notes.push({ title: args[0], body: args[1]?.body ?? '' });
        return Reflect.construct(target, args);
      },
    });
  }
  let hidden = false;
  Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true, get: () => (hidden ? 'hidden' : 'visible') });
  Object.defineProperty(Document.prototype, 'hidden', { configurable: true, get: () => hidden });
  window.__setHidden = (h) => {
    hidden = h;
    document.dispatchEvent(new Event('visibilitychange'));
  };
}

let adminToken;
export async function admin() {
  adminToken ??= (await call('POST', '/api/v1/auth/login', null, { email: 'admin@shop.vn', password: PASSWORD })).token;
  return adminToken;
}

export async function newInbox(name, members, settings) {
  const id = (await call('POST', '/api/v1/inboxes', await admin(), { name, channel: 'livechat', ...(settings ? { settings } : {}) })).id;
  await call('PUT', `/api/v1/inboxes/${id}/members`, await admin(), { agent_ids: members });
  return id;
}

/** A visitor (over the widget's API) who writes `text`; returns their token and conversation id. */
export async function visitorSays(inbox, text, token) {
  token ??= (await call('POST', '/widget/v1/sessions', null, { inbox_id: inbox })).token;
  const said = await call('POST', '/widget/v1/messages', token, { text });
  return { token, conv: said.message.conversation_id };
}

export const sounds = (page) => page.evaluate(() => window.__sounds);
export const notes = (page) => page.evaluate(() => window.__notes);

/** `switchboard sandbox --channels` next to the server: its process and the settings it prints for `channel`. */
export async function channelSandbox(channel = 'whatsapp') {
  const port = await freePort();
  const proc = spawn(bin, ['sandbox', '--channels', '--bind', `127.0.0.1:${port}`, '--webhook-url', `${base}/webhooks/meta`], {
    env: serverEnv({ SWITCHBOARD_LOG: 'warn' }),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const settings = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no sandbox settings in: ${out}`)), 20000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(new RegExp(`-d '(\\{"channel":"${channel}".*?\\})'\\n`));
      if (m) {
        clearTimeout(timer);
        resolve(JSON.parse(m[1]).settings);
      }
    });
  });
  return { proc, settings };
}
