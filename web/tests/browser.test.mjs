// Browser tests: the real `switchboard` binary, a customer's page on another origin with the
// widget, and agents in Chromium (Debian's /usr/bin/chromium driven by playwright-core).
// Screenshots go to test-artifacts/screenshots/ (git-ignored) for reviewers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import path from 'node:path';
import { agentPage, base, browser, call, channelSandbox, ids, pageUrl, PASSWORD, SHIPFREE, shots, useWorld } from './support.mjs';

useWorld();

test('a visitor and two agents, end to end in the browser', async () => {
  const lan = await agentPage('lan@shop.vn');
  await lan.screenshot({ path: path.join(shots, '01-agent-empty-pool.png') });

  // The visitor opens the widget on the shop's page and writes.
  const vctx = await browser.newContext({ locale: 'en-US', viewport: { width: 1000, height: 760 } });
  const visitor = await vctx.newPage();
  await visitor.goto(pageUrl);
  await visitor.locator('.bubble').click();
  const vinput = visitor.locator('.compose textarea');
  await vinput.fill('Hello, do you have this shirt in size M?');
  await vinput.press('Enter');
  await visitor.locator('.m.customer', { hasText: 'size M' }).waitFor();
  await visitor.screenshot({ path: path.join(shots, '02-widget-first-message.png') });

  // It shows up in Lan's Unassigned list without a reload.
  const row = lan.getByTestId('conversation-row').filter({ hasText: 'size M' });
  await row.waitFor();
  await row.click();
  assert.equal(await lan.getByTestId('composer-input').isDisabled(), true, 'composer is locked until the conversation is claimed');
  await lan.getByTestId('claim').click();
  await lan.getByTestId('holder').filter({ hasText: 'You are handling' }).waitFor();
  const input = lan.getByTestId('composer-input');
  assert.equal(await input.isDisabled(), false);

  // "/" + part of a code, arrows, Enter picks; Enter sends.
  await input.click();
  await input.pressSequentially('/sh');
  const options = lan.getByTestId('quick-reply');
  await options.first().waitFor();
  assert.equal(await options.count(), 2, 'only codes starting with "sh"');
  await input.press('ArrowDown');
  await input.press('ArrowUp');
  await input.press('ArrowDown');
  await input.press('Enter');
  assert.equal(await input.inputValue(), SHIPFREE);
  await lan.screenshot({ path: path.join(shots, '03-agent-quick-reply-picked.png') });
  await input.press('Enter');
  await lan.getByTestId('message').filter({ hasText: SHIPFREE }).waitFor();
  assert.equal(await input.inputValue(), '', 'the composer clears after sending');

  // The visitor sees the reply.
  await visitor.locator('.m.agent', { hasText: SHIPFREE }).waitFor();

  // Shift+Enter makes a multi-line message.
  await input.pressSequentially('Line one');
  await input.press('Shift+Enter');
  await input.pressSequentially('Line two');
  await input.press('Enter');
  const multi = visitor.locator('.m.agent', { hasText: 'Line two' });
  await multi.waitFor();
  assert.equal(await multi.innerText(), 'Line one\nLine two');

  // A private note stays with the agents.
  await lan.getByTestId('mode-note').click();
  await input.pressSequentially('VIP customer, be extra nice');
  await input.press('Enter');
  await lan.locator('[data-testid=message][data-kind=note]', { hasText: 'VIP customer' }).waitFor();
  await lan.getByTestId('mode-reply').click();
  await input.pressSequentially('Anything else I can help with?');
  await input.press('Enter');
  await visitor.locator('.m.agent', { hasText: 'Anything else' }).waitFor();
  assert.equal(await visitor.locator('.m', { hasText: 'VIP customer' }).count(), 0, 'the note never reaches the visitor');
  await lan.screenshot({ path: path.join(shots, '04-agent-thread.png') });
  await visitor.screenshot({ path: path.join(shots, '05-widget-thread.png') });

  // Minh sees who has it and cannot send.
  const minh = await agentPage('minh@shop.vn');
  await minh.getByTestId('tab-all').click();
  await minh.getByTestId('conversation-row').filter({ hasText: 'Anything else' }).click();
  await minh.getByTestId('holder').filter({ hasText: 'Claimed by Lan' }).waitFor();
  assert.equal(await minh.getByTestId('composer-input').isDisabled(), true);
  assert.equal(await minh.getByTestId('send').isDisabled(), true);
  await minh.screenshot({ path: path.join(shots, '06-second-agent-sees-claimed.png') });

  // Lan transfers it to Minh with a message; it moves to Minh's "Mine".
  await lan.getByTestId('transfer').click();
  await lan.getByTestId('dialog-agent').selectOption(ids.minh);
  await lan.getByTestId('dialog-message').fill('Please handle the size exchange');
  await lan.getByTestId('dialog-confirm').click();
  await lan.getByTestId('holder').filter({ hasText: 'Claimed by Minh' }).waitFor();
  await minh.getByTestId('tab-mine').click();
  await minh.getByTestId('conversation-row').filter({ hasText: 'Please handle' }).or(minh.getByTestId('conversation-row').filter({ hasText: 'Anything else' })).first().waitFor();
  await minh.getByTestId('toast').filter({ hasText: /Conversation with Visitor \w+ is now yours/ }).waitFor();
  await minh.getByTestId('conversation-row').first().click();
  await minh.locator('[data-testid=message][data-kind=agent_to_agent]', { hasText: 'Please handle the size exchange' }).waitFor();
  assert.equal(await minh.getByTestId('composer-input').isDisabled(), false, 'the new holder may reply');
  await minh.getByTestId('side-history').click();
  await minh.getByTestId('history').filter({ hasText: 'transferred it to Minh' }).waitFor();
  await minh.screenshot({ path: path.join(shots, '07-transferred-to-second-agent.png') });
  assert.equal(await visitor.locator('.m', { hasText: 'size exchange' }).count(), 0, 'the hand-over message is private');

  // Switching to Vietnamese changes the interface text.
  await lan.getByTestId('lang-switch').first().click();
  await lan.getByTestId('nav-conversations').filter({ hasText: 'Hội thoại' }).waitFor();
  await lan.getByTestId('tab-mine').filter({ hasText: 'Của tôi' }).waitFor();
  assert.equal(await lan.getByTestId('tab-unassigned').innerText(), 'Chưa phân công');
  await lan.screenshot({ path: path.join(shots, '08-agent-vietnamese.png') });
});

test('the widget keeps the visitor across reloads and its styles stay apart from the page', async () => {
  const ctx = await browser.newContext({ locale: 'vi-VN' });
  const page = await ctx.newPage();
  await page.goto(pageUrl);
  await page.locator('.bubble').click();
  await page.locator('.compose textarea').fill('Tin nhắn đầu tiên');
  await page.locator('.compose textarea').press('Enter');
  // Stored (the widget marks a message with its id once the server has it), then reload.
  await page.locator('.m.customer[data-id]', { hasText: 'Tin nhắn đầu tiên' }).waitFor();
  await page.waitForFunction(() => Object.keys(localStorage).some((k) => k.startsWith('sb_widget_')));
  await page.reload();
  await page.locator('.bubble').click();
  await page.locator('.m.customer', { hasText: 'Tin nhắn đầu tiên' }).waitFor();
  // The host page paints every <button> red; the widget's send button keeps its own colour.
  const color = await page.locator('button.send').evaluate((b) => getComputedStyle(b).backgroundColor);
  assert.notEqual(color, 'rgb(255, 0, 0)');
  // data-lang="en" on the snippet wins over the browser's Vietnamese.
  assert.equal(await page.locator('button.send').innerText(), 'Send');
});

test('an admin sets even-split routing in the UI and the next customer lands with an online agent', async () => {
  const admin = (await call('POST', '/api/v1/auth/login', null, { email: 'admin@shop.vn', password: PASSWORD })).token;
  const inbox = (await call('POST', '/api/v1/inboxes', admin, { name: 'Fanpage chat', channel: 'livechat' })).id;
  await call('PUT', `/api/v1/inboxes/${inbox}/members`, admin, { agent_ids: [ids.lan] });

  const ui = await agentPage('admin@shop.vn');
  await ui.getByTestId('nav-inboxes').click();
  const form = ui.locator('.card', { hasText: 'Fanpage chat' }).getByTestId('routing-form');
  await form.getByTestId('routing-strategy').selectOption('round_robin');
  await form.getByTestId('routing-sla').fill('5');
  await form.getByTestId('routing-save').click();
  await form.getByText('Routing saved').waitFor();
  const rules = await call('GET', `/api/v1/inboxes/${inbox}/routing`, admin);
  assert.equal(rules.strategy, 'round_robin');
  assert.equal(rules.reply_sla_minutes, 5);
  await ui.screenshot({ path: path.join(shots, '09-routing-settings.png') });

  // Lan is online (her app is open); a new customer is hers at once, with the reply countdown.
  const lan = await agentPage('lan@shop.vn');
  await lan.getByTestId('tab-mine').click();
  const visitor = await (await browser.newContext({ locale: 'en-US' })).newPage();
  await visitor.goto(`${pageUrl}?inbox=${inbox}`);
  await visitor.locator('.bubble').click();
  await visitor.locator('.compose textarea').fill('Is this on sale?');
  await visitor.locator('.compose textarea').press('Enter');
  const row = lan.getByTestId('conversation-row').filter({ hasText: 'on sale' });
  await row.waitFor();
  await lan.getByTestId('toast').filter({ hasText: 'is now yours' }).waitFor();
  // Opening by dragging the conversation into the chat pane.
  await row.dragTo(lan.getByTestId('chat-pane'));
  await lan.getByTestId('holder').filter({ hasText: 'You are handling' }).waitFor();
  await lan.getByTestId('sla').filter({ hasText: /Reply within [45]:\d\d/ }).waitFor();
  await lan.screenshot({ path: path.join(shots, '10-auto-assigned-with-sla.png') });

  // Lan steps away: the admin's team list shows it.
  await lan.getByTestId('presence').selectOption('away');
  await ui.getByTestId('team').locator('[title=Away]', { hasText: 'Lan' }).waitFor();
});

test('the composer follows the Messenger window: HUMAN_AGENT needs a confirmation, after 7 days it is closed', async () => {
  const admin = (await call('POST', '/api/v1/auth/login', null, { email: 'admin@shop.vn', password: PASSWORD })).token;
  const secret = 'app-secret-for-the-browser-test';
  const pageId = '555000111';
  // The provider is unreachable here: sends stay queued, which is all this test needs.
  const inbox = (
    await call('POST', '/api/v1/inboxes', admin, {
      name: 'Facebook page',
      channel: 'messenger',
      settings: { page_id: pageId, page_access_token: 'token', app_secret: secret, verify_token: 'verify-me-please', api_base_url: 'http://127.0.0.1:9/v26.0' },
    })
  ).id;
  await call('PUT', `/api/v1/inboxes/${inbox}/members`, admin, { agent_ids: [ids.lan] });
  const hour = 3600_000;
  const dm = async (psid, text, ageMs) => {
    const body = JSON.stringify({
      object: 'page',
      entry: [{ id: pageId, time: Date.now(), messaging: [{ sender: { id: psid }, recipient: { id: pageId }, timestamp: Date.now() - ageMs, message: { mid: `m-${psid}`, text } }] }],
    });
    const sig = 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
    const r = await fetch(base + '/webhooks/meta', { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': sig }, body });
    assert.equal(r.status, 200);
  };
  await dm('psid-25h', 'Hôm qua mình hỏi về đơn hàng', 25 * hour);
  await dm('psid-8d', 'Tuần trước mình có nhắn', 8 * 24 * hour);

  const lan = await agentPage('lan@shop.vn');
  await lan.getByTestId('conversation-row').filter({ hasText: 'Hôm qua' }).click();
  await lan.getByTestId('claim').click();
  const bar = lan.getByTestId('policy');
  await bar.filter({ hasText: 'You may not send promotional content' }).waitFor();
  const input = lan.getByTestId('composer-input');
  assert.equal(await input.isDisabled(), true, 'locked until the agent confirms');
  await lan.getByTestId('policy-confirm').check();
  await input.pressSequentially('Dạ đơn của anh đang được giao ạ');
  await input.press('Enter');
  await lan.getByTestId('message').filter({ hasText: 'đang được giao' }).getByTestId('delivery').filter({ hasText: 'Queued' }).waitFor();
  await lan.screenshot({ path: path.join(shots, '11-messenger-human-agent.png') });
  const conv = (await call('GET', `/api/v1/conversations?inbox_id=${inbox}&assignee=${ids.lan}`, admin)).items[0].id;
  const sent = (await call('GET', `/api/v1/conversations/${conv}/messages`, admin)).items.find((m) => m.text.includes('đang được giao'));
  assert.equal(sent.messaging_type, 'MESSAGE_TAG');
  assert.equal(sent.tag, 'HUMAN_AGENT');

  await lan.getByTestId('tab-unassigned').click();
  await lan.getByTestId('conversation-row').filter({ hasText: 'Tuần trước' }).click();
  await lan.getByTestId('claim').click();
  await lan.getByTestId('policy').filter({ hasText: 'messaging window is closed' }).waitFor();
  assert.equal(await lan.getByTestId('composer-input').isDisabled(), true);
  await lan.getByTestId('policy').getByRole('link').waitFor();
  await lan.screenshot({ path: path.join(shots, '12-messenger-window-closed.png') });
});

test('pre-chat fields: the visitor gives a name and phone before chatting, and the agent sees them', async () => {
  const admin = (await call('POST', '/api/v1/auth/login', null, { email: 'admin@shop.vn', password: PASSWORD })).token;
  const inbox = (
    await call('POST', '/api/v1/inboxes', admin, { name: 'Pre-chat shop', channel: 'livechat', settings: { greeting: 'Chào bạn!', prechat_fields: ['name', 'phone'] } })
  ).id;
  await call('PUT', `/api/v1/inboxes/${inbox}/members`, admin, { agent_ids: [ids.lan] });
  const visitor = await (await browser.newContext({ locale: 'vi-VN' })).newPage();
  await visitor.goto(`${pageUrl}?inbox=${inbox}`);
  await visitor.locator('.bubble').click();
  await visitor.locator('form.pre input[name=name]').fill('Chị Mai');
  await visitor.locator('form.pre input[name=phone]').fill('0987 654 321');
  await visitor.locator('form.pre button').click();
  await visitor.locator('.m.agent', { hasText: 'Chào bạn!' }).waitFor();
  await visitor.locator('.compose textarea').fill('Mình muốn hỏi về đơn hàng');
  await visitor.locator('.compose textarea').press('Enter');
  await visitor.locator('.m.customer', { hasText: 'đơn hàng' }).waitFor();
  await visitor.screenshot({ path: path.join(shots, '13-widget-prechat.png') });
  const list = await call('GET', `/api/v1/conversations?inbox_id=${inbox}`, admin);
  assert.equal(list.items[0].contact_name, 'Chị Mai');
  const contact = await call('GET', `/api/v1/contacts/${list.items[0].contact_id}`, admin);
  assert.equal(contact.phone, '0987654321');
});

test('WhatsApp after 24 hours: only a template, picked and filled in the composer; the usage report shows it', async () => {
  const admin = (await call('POST', '/api/v1/auth/login', null, { email: 'admin@shop.vn', password: PASSWORD })).token;
  // The channel sandbox stands in for WhatsApp's Cloud API (templates, sends, statuses).
  const { proc: sandbox, settings } = await channelSandbox();
  try {
    const inbox = (await call('POST', '/api/v1/inboxes', admin, { name: 'WhatsApp shop', channel: 'whatsapp', settings })).id;
    await call('PUT', `/api/v1/inboxes/${inbox}/members`, admin, { agent_ids: [ids.lan] });
    const secs = Math.floor(Date.now() / 1000) - 25 * 3600;
    const body = JSON.stringify({
      object: 'whatsapp_business_account',
      entry: [{ id: settings.waba_id, changes: [{ field: 'messages', value: {
        messaging_product: 'whatsapp',
        metadata: { display_phone_number: '84280000101', phone_number_id: settings.phone_number_id },
        contacts: [{ profile: { name: 'Anh Tuấn' }, wa_id: '84912000111' }],
        messages: [{ from: '84912000111', id: 'wamid.browser.1', timestamp: String(secs), type: 'text', text: { body: 'Đơn của tôi đến đâu rồi?' } }],
      } }] }],
    });
    const sig = 'sha256=' + createHmac('sha256', settings.app_secret).update(body).digest('hex');
    const r = await fetch(base + '/webhooks/whatsapp', { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': sig }, body });
    assert.equal(r.status, 200);

    const lan = await agentPage('lan@shop.vn');
    await lan.getByTestId('conversation-row').filter({ hasText: 'Anh Tuấn' }).click();
    await lan.getByTestId('claim').click();
    await lan.getByTestId('policy').filter({ hasText: 'only an approved template' }).waitFor();
    assert.equal(await lan.getByTestId('composer-input').isDisabled(), true, 'free-form text is locked');
    // The attach hint names WhatsApp's own file limits (documents within our 20 MB upload limit).
    await lan.getByTestId('attach-limits').filter({ hasText: 'Images ≤ 5 MB · Video ≤ 16 MB · Audio ≤ 16 MB · Files ≤ 20 MB' }).waitFor();
    await lan.getByTestId('template-select').selectOption('order_update|vi');
    await lan.getByTestId('tpl-b0').fill('Tuấn');
    await lan.getByTestId('tpl-b1').fill('#A123');
    await lan.getByTestId('template-send').click();
    const sent = lan.getByTestId('message').filter({ hasText: 'Chào Tuấn, đơn #A123 đã được gửi.' });
    await sent.getByTestId('delivery').filter({ hasText: /Sent|Delivered|Read/ }).waitFor();
    await lan.screenshot({ path: path.join(shots, '14-whatsapp-template.png') });

    const ui = await agentPage('admin@shop.vn');
    await ui.getByTestId('nav-reports').click();
    await ui.getByTestId('reports').locator('td', { hasText: 'utility' }).first().waitFor();
    // Money reads as money: the currency's symbol and decimals, never "0.000000 USD".
    const total = await ui.getByTestId('report-total').innerText();
    assert.match(total, /^\$\d[\d,]*\.\d{2,6}$/, total);
    assert.doesNotMatch(total, /\.\d*000$/, total);
    for (const cost of await ui.getByTestId('report-cost').allInnerTexts()) assert.match(cost, /^\$\d[\d,]*\.\d{2,6}$/, cost);
    await ui.screenshot({ path: path.join(shots, '15-whatsapp-usage-report.png') });
  } finally {
    sandbox.kill('SIGTERM');
  }
});

test('files with a disguised type never run script: an admin opening them stays the only admin', async () => {
  const admin = (await call('POST', '/api/v1/auth/login', null, { email: 'admin@shop.vn', password: PASSWORD })).token;
  const lanToken = (await call('POST', '/api/v1/auth/login', null, { email: 'lan@shop.vn', password: PASSWORD })).token;
  const inbox = (await call('POST', '/api/v1/inboxes', admin, { name: 'Hostile files', channel: 'livechat' })).id;
  await call('PUT', `/api/v1/inboxes/${inbox}/members`, admin, { agent_ids: [ids.lan] });
  const visitor = (await call('POST', '/widget/v1/sessions', null, { inbox_id: inbox })).token;
  const said = await call('POST', '/widget/v1/messages', visitor, { text: 'xem ảnh này' });
  const conv = said.message.conversation_id;
  await call('POST', `/api/v1/conversations/${conv}/claim`, lanToken);
  // What the attacker uploaded: a picture that, shown as SVG on our origin, makes itself an admin.
  const payload = `<svg xmlns="http://www.w3.org/2000/svg" onload="fetch('/api/v1/agents',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify({email:'evil@x.vn',name:'Evil',role:'admin',password:'correct horse battery'})});document.title='ran'"><rect width="10" height="10"/></svg>`;
  const urls = [];
  for (const type of ['image/SVG+xml', 'image/png,text/html', 'image/x;a=b,application/xml']) {
    const r = await fetch(`${base}/api/v1/conversations/${conv}/attachments?filename=anh.svg`, {
      method: 'POST',
      headers: { authorization: `Bearer ${lanToken}`, 'content-type': type },
      body: payload,
    });
    assert.equal(r.status, 201, type);
    const m = await r.json();
    assert.equal(m.attachments[0].content_type, 'application/octet-stream', type);
    urls.push(m.attachments[0].url);
  }

  const page = await agentPage('admin@shop.vn');
  const posts = [];
  page.on('request', (req) => {
    if (req.method() === 'POST' && req.url().includes('/api/v1/agents')) posts.push(req.url());
  });
  // Opened directly, each is a download or an inert sandboxed document; script never runs.
  for (const url of urls) {
    const opened = await page.context().newPage();
    opened.on('request', (req) => {
      if (req.method() === 'POST' && req.url().includes('/api/v1/agents')) posts.push(req.url());
    });
    const download = opened.waitForEvent('download', { timeout: 5000 }).catch(() => null);
    await opened.goto(base + url).catch(() => undefined); // a download aborts the navigation
    assert.ok(await download, `${url} is downloaded, not rendered`);
    assert.notEqual(await opened.title().catch(() => ''), 'ran');
    await opened.close();
  }
  // In the conversation they show as files to download, never as pictures.
  await page.getByTestId('tab-all').click();
  await page.getByTestId('conversation-row').filter({ hasText: 'anh.svg' }).first().click();
  await page.locator('.attachments a.file').first().waitFor();
  assert.equal(await page.locator('.attachments img').count(), 0);
  await page.screenshot({ path: path.join(shots, '16-disguised-files-are-downloads.png') });
  assert.deepEqual(posts, []);
  const agents = await call('GET', '/api/v1/agents', admin);
  assert.equal(agents.items.filter((a) => a.role === 'admin').length, 1, 'still one admin');
  await page.context().close();
});
