// Confirmations before what cannot be undone (ending an unanswered conversation, deleting a tag —
// with Undo — or a customer's Facebook comment), and labels that fit at 1440 px.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import path from 'node:path';
import { admin, agentPage, base, call, DESKTOP, ids, newInbox, PASSWORD, shots, useWorld, visitorSays } from './support.mjs';

useWorld();

test('ending a conversation with unanswered customer messages asks first; one already answered ends at once', async () => {
  const inbox = await newInbox('Confirm shop', [ids.lan]);
  const waiting = await visitorSays(inbox, 'Hello?');
  for (const text of ['Is anyone there?', 'I want to order 3 shirts']) await visitorSays(inbox, text, waiting.token);
  const lan = await agentPage('lan@shop.vn', 'en-US', DESKTOP);
  await lan.getByTestId('conversation-row').filter({ hasText: '3 shirts' }).click();
  await lan.getByTestId('resolve').click();
  const dialog = lan.getByTestId('confirm');
  await dialog.filter({ hasText: 'The customer has 3 message(s) with no reply yet' }).waitFor();
  await lan.screenshot({ path: path.join(shots, 'confirm-1-resolve.png') });
  // "Cancel" (focused first) keeps the customer waiting.
  assert.equal(await lan.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'confirm-cancel');
  await lan.keyboard.press('Enter');
  await dialog.waitFor({ state: 'hidden' });
  assert.equal((await call('GET', `/api/v1/conversations/${waiting.conv}`, await admin())).status, 'pending');
  // Ending anyway.
  await lan.getByTestId('resolve').click();
  await lan.getByTestId('confirm-ok').click();
  await lan.getByTestId('reopen').waitFor();
  assert.equal((await call('GET', `/api/v1/conversations/${waiting.conv}`, await admin())).status, 'resolved');

  // Answered last: no question asked.
  const answered = await visitorSays(inbox, 'Thanks, that is all');
  const lanToken = (await call('POST', '/api/v1/auth/login', null, { email: 'lan@shop.vn', password: PASSWORD })).token;
  await call('POST', `/api/v1/conversations/${answered.conv}/claim`, lanToken);
  await call('POST', `/api/v1/conversations/${answered.conv}/messages`, lanToken, { text: 'You are welcome!', kind: 'reply' });
  await lan.getByTestId('tab-all').click();
  await lan.getByTestId('conversation-row').filter({ hasText: 'welcome' }).click();
  await lan.getByTestId('resolve').click();
  await lan.getByTestId('reopen').waitFor();
  assert.equal(await lan.getByTestId('confirm').count(), 0);
  await lan.context().close();
});

test('deleting a tag says how many conversations lose it, and Undo puts it back on them', async () => {
  const inbox = await newInbox('Tag shop', [ids.lan]);
  const lanToken = (await call('POST', '/api/v1/auth/login', null, { email: 'lan@shop.vn', password: PASSWORD })).token;
  const convs = [];
  for (const text of ['VIP one', 'VIP two']) {
    const { conv } = await visitorSays(inbox, text);
    await call('POST', `/api/v1/conversations/${conv}/tags`, lanToken, { name: 'khach-vip' });
    convs.push(conv);
  }
  const ui = await agentPage('admin@shop.vn', 'en-US', DESKTOP);
  await ui.getByTestId('nav-tags').click();
  const chip = ui.getByTestId('tag').filter({ hasText: 'khach-vip' });
  await chip.getByTestId('tag-delete').click();
  await ui.getByTestId('confirm').filter({ hasText: 'It is taken off 2 conversation(s).' }).waitFor();
  await ui.getByTestId('confirm-cancel').click();
  assert.equal(await chip.count(), 1, 'cancel keeps the tag');
  await chip.getByTestId('tag-delete').click();
  await ui.getByTestId('confirm-ok').click();
  await chip.waitFor({ state: 'detached' });
  for (const id of convs) assert.deepEqual((await call('GET', `/api/v1/conversations/${id}`, await admin())).tags, []);
  await ui.screenshot({ path: path.join(shots, 'confirm-2-tag-undo.png') });
  await ui.getByTestId('toast').filter({ hasText: 'Tag “khach-vip” deleted' }).getByTestId('undo').click();
  await chip.waitFor();
  for (const id of convs) assert.deepEqual((await call('GET', `/api/v1/conversations/${id}`, await admin())).tags, ['khach-vip']);
  await ui.context().close();
});

test("deleting a customer's Facebook comment asks first and offers hiding instead", async () => {
  const secret = 'app-secret-for-the-comment-test';
  const pageId = '777000222';
  const inbox = (
    await call('POST', '/api/v1/inboxes', await admin(), {
      name: 'Fanpage comments',
      channel: 'messenger',
      settings: { page_id: pageId, page_access_token: 'token', app_secret: secret, verify_token: 'verify-me-please', api_base_url: 'http://127.0.0.1:9/v26.0' },
    })
  ).id;
  await call('PUT', `/api/v1/inboxes/${inbox}/members`, await admin(), { agent_ids: [ids.lan] });
  const secs = Math.floor(Date.now() / 1000);
  const body = JSON.stringify({
    object: 'page',
    entry: [{ id: pageId, time: secs, changes: [{ field: 'feed', value: {
      item: 'comment', verb: 'add', comment_id: `${pageId}_1_c1`, post_id: `${pageId}_1`, parent_id: `${pageId}_1`,
      from: { id: 'psid-comment', name: 'Trần Văn Bình' }, message: 'Giá bao nhiêu vậy shop?', created_time: secs,
      post: { id: `${pageId}_1`, status_type: 'mobile_status_update', is_published: true },
    } }] }],
  });
  const sig = 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
  const r = await fetch(base + '/webhooks/meta', { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': sig }, body });
  assert.equal(r.status, 200);

  const lan = await agentPage('lan@shop.vn', 'vi-VN', DESKTOP);
  const actions = [];
  lan.on('request', (req) => {
    if (req.method() === 'POST' && req.url().includes('/comment-actions')) actions.push(req.postDataJSON().action);
  });
  await lan.getByTestId('conversation-row').filter({ hasText: 'Giá bao nhiêu' }).click();
  await lan.getByTestId('comment-delete').click();
  const dialog = lan.getByTestId('confirm');
  await dialog.filter({ hasText: 'không thể hoàn tác' }).waitFor();
  await lan.screenshot({ path: path.join(shots, 'confirm-3-comment.png') });
  await lan.getByTestId('confirm-cancel').click();
  await dialog.waitFor({ state: 'hidden' });
  assert.deepEqual(actions, [], 'cancel sends nothing');
  await lan.getByTestId('comment-delete').click();
  const hid = lan.waitForRequest((req) => req.url().includes('/comment-actions'));
  await lan.getByTestId('confirm-hide').click();
  await hid;
  assert.deepEqual(actions, ['hide']);
  await lan.context().close();
});

test('at 1440×900 in Vietnamese the tabs fit on one line with their counts', async () => {
  const inbox = await newInbox('Labels shop', [ids.lan]);
  await visitorSays(inbox, 'Xin chào');
  const lan = await agentPage('lan@shop.vn', 'vi-VN', DESKTOP);
  await lan.getByTestId('count-unassigned').waitFor();
  for (const tab of ['mine', 'unassigned', 'all', 'resolved']) {
    const fits = await lan.getByTestId(`tab-${tab}`).evaluate((el) => {
      const label = el.querySelector('.tab-label');
      const line = parseFloat(getComputedStyle(label).lineHeight) || 20;
      return { oneLine: label.getBoundingClientRect().height < line * 1.5, inside: el.scrollWidth <= el.clientWidth, text: label.textContent };
    });
    assert.ok(fits.oneLine && fits.inside, `“${fits.text}” fits on one line (${JSON.stringify(fits)})`);
  }
  await lan.screenshot({ path: path.join(shots, 'labels-1440-vi.png') });
  await lan.context().close();
});
