// Browser tests of automation: an admin builds a flow in the editor, fixes what the check
// finds, tries it in the simulator, and a customer's message is answered by the bot; an agent
// takes over from the bot; a scheduled flow is attached in the side panel and its status moves.
// The real binary, Chromium driven by playwright-core; screenshots in test-artifacts/screenshots/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const root = path.resolve(import.meta.dirname, '../..');
const bin = process.env.SWITCHBOARD_BIN ?? path.join(root, 'target/debug/switchboard');
const shots = path.join(root, 'test-artifacts/screenshots');
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const PASSWORD = 'correct horse battery';

let server, browser, dataDir, base, admin;
const ids = {};

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function call(method, url, token, body) {
  const r = await fetch(base + url, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const j = await r.json().catch(() => null);
  assert.ok(r.ok, `${method} ${url} → ${r.status} ${JSON.stringify(j)}`);
  return j;
}

before(async () => {
  mkdirSync(shots, { recursive: true });
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'sb-flows-'));
  const env = { ...process.env, SWITCHBOARD_DATA_DIR: dataDir, SWITCHBOARD_LOG: 'warn', SWITCHBOARD_LIMITS__LOGIN_PER_MINUTE: '1000' };
  const add = spawnSync(bin, ['user', 'add', '--email', 'admin@shop.vn', '--name', 'Admin', '--role', 'admin', '--password-stdin'], { input: PASSWORD, env });
  assert.equal(add.status, 0, `user add failed: ${add.stderr}`);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(bin, ['serve'], { env: { ...env, SWITCHBOARD_BIND: `127.0.0.1:${port}` }, stdio: ['ignore', 'inherit', 'inherit'] });
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(base + '/healthz')).ok) break;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  admin = (await call('POST', '/api/v1/auth/login', null, { email: 'admin@shop.vn', password: PASSWORD })).token;
  ids.lan = (await call('POST', '/api/v1/agents', admin, { email: 'lan@shop.vn', name: 'Lan', role: 'agent', password: PASSWORD })).id;
  ids.inbox = (await call('POST', '/api/v1/inboxes', admin, { name: 'Website', channel: 'livechat' })).id;
  await call('PUT', `/api/v1/inboxes/${ids.inbox}/members`, admin, { agent_ids: [ids.lan] });
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function signIn(email) {
  const ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 1400, height: 900 } });
  const page = await ctx.newPage();
  await page.goto(base + '/');
  await page.locator('input[name=email]').fill(email);
  await page.locator('input[name=password]').fill(PASSWORD);
  await page.locator('button[type=submit]').click();
  await page.getByTestId('conversation-list').waitFor();
  return page;
}

/** A widget visitor writes (over the widget's API); returns the conversation id. */
async function visitorSays(text) {
  const s = await call('POST', '/widget/v1/sessions', null, { inbox_id: ids.inbox, name: 'Chị Hoa' });
  const m = await call('POST', '/widget/v1/messages', s.token, { text });
  return m.message.conversation_id;
}

const SIZE_FLOW = {
  name: 'Hỏi size',
  version: 1,
  triggers: [
    { type: 'keyword', match: 'whole_word', keywords: ['size'] },
    { type: 'scheduled_due' },
  ],
  start: 'ask',
  steps: [
    {
      id: 'ask',
      do: {
        type: 'ask',
        question: { text: 'Anh/chị mặc size nào ạ?' },
        answer: { type: 'choice', choices: [{ title: 'Size S', value: 'S' }, { title: 'Size M', value: 'M' }] },
        save_to: 'size',
        next: 'thanks',
      },
    },
    { id: 'thanks', do: { type: 'send_message', variants: [{ text: 'Dạ size {{contact.size}} còn hàng ạ' }], next: 'missing' } },
  ],
};

test('an admin builds a flow, fixes what the check finds and tries it in the simulator', async () => {
  const page = await signIn('admin@shop.vn');
  await page.getByTestId('nav-flows').click();
  await page.getByTestId('flow-new').click();
  // A step pointing nowhere: the check names the step and the field.
  await page.getByTestId('flow-json').fill(JSON.stringify(SIZE_FLOW, null, 2));
  await page.getByTestId('flow-check').click();
  const problem = page.getByTestId('flow-step').filter({ hasText: 'thanks' }).getByTestId('flow-problem');
  await problem.filter({ hasText: 'missing' }).waitFor();
  await page.screenshot({ path: path.join(shots, 'flows-01-editor-problem.png') });
  const fixed = { ...SIZE_FLOW, steps: [SIZE_FLOW.steps[0], { id: 'thanks', do: { type: 'send_message', variants: [{ text: 'Dạ size {{contact.size}} còn hàng ạ' }] } }] };
  await page.getByTestId('flow-json').fill(JSON.stringify(fixed, null, 2));
  await page.getByTestId('flow-check').click();
  await page.getByTestId('flow-valid').waitFor();
  await page.getByTestId('flow-save').click();
  await page.locator('h2', { hasText: 'Hỏi size · v1' }).waitFor();

  // The simulator on Messenger: the question goes out with buttons; a tap answers it.
  await page.getByTestId('sim-channel').selectOption('messenger');
  await page.getByTestId('sim-start').click();
  const bot = page.getByTestId('sim-bot');
  await bot.filter({ hasText: 'Anh/chị mặc size nào ạ?' }).filter({ hasText: 'buttons' }).waitFor();
  await bot.getByRole('button', { name: 'Size M' }).click();
  await bot.filter({ hasText: 'Dạ size M còn hàng ạ' }).waitFor();
  // On Zalo the same question is a numbered list.
  await page.getByTestId('sim-channel').selectOption('zalo');
  await page.getByTestId('sim-start').click();
  await bot.filter({ hasText: '1. Size S' }).filter({ hasText: 'numbered list' }).waitFor();
  await page.screenshot({ path: path.join(shots, 'flows-02-simulator.png') });

  // A real customer writes the keyword: the bot asks, the conversation is in the Bot tab.
  const conv = await visitorSays('shop còn size M không?');
  for (let i = 0; i < 100; i++) {
    const c = await call('GET', `/api/v1/conversations/${conv}`, admin);
    if (c.status === 'bot') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const lan = await signIn('lan@shop.vn');
  await lan.getByTestId('tab-bot').click();
  await lan.getByTestId('conversation-row').filter({ hasText: 'size nào' }).click();
  await lan.getByTestId('bot-banner').waitFor();
  await lan.getByTestId('message').filter({ hasText: 'Anh/chị mặc size nào ạ?' }).waitFor();
  await lan.screenshot({ path: path.join(shots, 'flows-03-bot-holds-it.png') });
  // Lan takes over: she holds it, the bot is done.
  await lan.getByTestId('take-over').click();
  await lan.getByTestId('holder').filter({ hasText: 'You are handling' }).waitFor();
  assert.equal(await lan.getByTestId('bot-banner').count(), 0);
  const state = await call('GET', `/api/v1/conversations/${conv}/automation`, admin);
  assert.equal(state.running, null);
});

test('a scheduled flow is attached in the side panel and its status moves', async () => {
  const conv = await visitorSays('cảm ơn shop');
  const page = await signIn('admin@shop.vn');
  await page.getByTestId('tab-all').click();
  await page.getByTestId('conversation-row').filter({ hasText: 'cảm ơn shop' }).click();
  const panel = page.getByTestId('automation-panel');
  await panel.getByTestId('scheduled-flow').selectOption({ label: 'Hỏi size' });
  await panel.getByTestId('scheduled-delay').fill('2');
  // Live chat has no window: the forecast says the bot may write then.
  await panel.getByTestId('scheduled-forecast').filter({ hasText: 'may message' }).waitFor();
  await panel.getByTestId('scheduled-attach').click();
  const item = panel.getByTestId('scheduled-item').filter({ hasText: 'Hỏi size' });
  await item.getByTestId('scheduled-status').filter({ hasText: 'scheduled' }).waitFor();
  await page.screenshot({ path: path.join(shots, 'flows-04-scheduled.png') });
  await item.getByTestId('scheduled-send-now').click();
  await item.getByTestId('scheduled-status').filter({ hasText: 'sent' }).waitFor();
  await page.getByTestId('message').filter({ hasText: 'Anh/chị mặc size nào ạ?' }).waitFor();
  const list = await call('GET', `/api/v1/conversations/${conv}`, admin);
  assert.equal(list.status, 'bot', 'the scheduled flow holds the conversation while it asks');
  await page.screenshot({ path: path.join(shots, 'flows-05-scheduled-sent.png') });
});
