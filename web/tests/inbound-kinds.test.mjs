// Browser test of inbound kinds in the thread: a Messenger customer writes, answers their own
// message (the reply links to it, with a quote), edits the answer and unsends the first message.
// The agent sees it live: the answer's new text marked "đã sửa", the deleted message's text gone
// (and its quote with it). Then an Instagram story reply shows the story it answers, and the same
// thread in English. The real binary, Chromium driven by playwright-core; a small local server
// stands in for Meta's profile API. Screenshots in test-artifacts/screenshots/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { createHmac } from 'node:crypto';
import { admin, agentPage, base, call, DESKTOP, freePort, ids, shots, useWorld } from './support.mjs';

useWorld();

test('edits, unsends, replies and story replies are shown as what they are, live', async () => {
  const graph = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"name":"Trần Thị Mai"}');
  });
  const graphPort = await freePort();
  await new Promise((r) => graph.listen(graphPort, '127.0.0.1', r));
  try {
    const secret = 'app-secret-for-the-kinds-test';
    const pageId = '777000444';
    const igId = '17841000444';
    const settings = { page_access_token: 'token', app_secret: secret, verify_token: 'verify-me-please', api_base_url: `http://127.0.0.1:${graphPort}/v26.0` };
    const messenger = (await call('POST', '/api/v1/inboxes', await admin(), { name: 'Fanpage Áo Đẹp', channel: 'messenger', settings: { ...settings, page_id: pageId } })).id;
    const instagram = (await call('POST', '/api/v1/inboxes', await admin(), { name: 'IG Áo Đẹp', channel: 'instagram', settings: { ...settings, ig_account_id: igId } })).id;
    for (const inbox of [messenger, instagram]) await call('PUT', `/api/v1/inboxes/${inbox}/members`, await admin(), { agent_ids: [ids.lan] });

    const hook = async (object, account, ...messaging) => {
      const body = JSON.stringify({ object, entry: [{ id: account, time: Date.now(), messaging }] });
      const sig = 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
      const r = await fetch(base + '/webhooks/meta', { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': sig }, body });
      assert.equal(r.status, 200);
    };
    const from = (psid, account) => ({ sender: { id: psid }, recipient: { id: account }, timestamp: Date.now() });
    await hook('page', pageId, { ...from('psid-1', pageId), message: { mid: 'm_first', text: 'Áo sơ mi trắng' } });
    await hook('page', pageId, { ...from('psid-1', pageId), message: { mid: 'm_answer', text: 'còn size M không?', reply_to: { mid: 'm_first' } } });

    const lan = await agentPage('lan@shop.vn', 'vi-VN', DESKTOP);
    await lan.getByTestId('conversation-row').filter({ hasText: 'còn size M không?' }).click();
    const answer = lan.getByTestId('message').filter({ hasText: 'size' });
    await answer.getByTestId('reply-to').filter({ hasText: 'Áo sơ mi trắng' }).waitFor();
    assert.equal(await answer.getByTestId('reply-to').locator('a').getAttribute('href').then((h) => h.startsWith('#msg-')), true);

    // The customer edits the answer and unsends the first message: the thread changes live.
    await hook('page', pageId, { ...from('psid-1', pageId), message_edit: { mid: 'm_answer', text: 'còn size L không?', num_edit: 1 } });
    await lan.getByTestId('message').filter({ hasText: 'còn size L không?' }).filter({ hasText: 'đã sửa' }).waitFor();
    // The edited message is the latest: the conversation list's preview follows.
    await lan.getByTestId('conversation-row').filter({ hasText: 'còn size L không?' }).waitFor();
    await hook('page', pageId, { ...from('psid-1', pageId), message: { mid: 'm_first', is_deleted: true } });
    await lan.getByTestId('message').filter({ hasText: 'Tin nhắn này đã bị xoá.' }).waitFor();
    assert.equal(await lan.getByTestId('message').filter({ hasText: 'Áo sơ mi trắng' }).count(), 0, 'the deleted text is not shown, not even quoted');
    assert.equal(await lan.getByTestId('message').count(), 2, 'no new message for an edit or an unsend');
    await lan.screenshot({ path: path.join(shots, 'inbound-kinds-1-edited-and-deleted.png') });

    // An Instagram story reply keeps the story it answers.
    await hook('instagram', igId, {
      ...from('igsid-1', igId),
      message: { mid: 'aWdf_story', text: 'Mẫu này còn không?', reply_to: { story: { url: 'https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1798', id: '17977' } } },
    });
    await lan.getByTestId('conversation-row').filter({ hasText: 'Mẫu này còn không?' }).click();
    const story = lan.getByTestId('message').filter({ hasText: 'Mẫu này còn không?' }).getByTestId('story');
    await story.filter({ hasText: 'Đã trả lời tin (story) của bạn' }).waitFor();
    assert.equal(await story.locator('a').getAttribute('href'), 'https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1798');
    await lan.screenshot({ path: path.join(shots, 'inbound-kinds-2-story-reply.png') });

    // The same in English.
    const en = await agentPage('lan@shop.vn', 'en-US', DESKTOP);
    await en.getByTestId('conversation-row').filter({ hasText: 'Mẫu này còn không?' }).click();
    await en.getByTestId('story').filter({ hasText: 'Replied to your story' }).waitFor();
    await en.getByTestId('conversation-row').filter({ hasText: 'còn size L không?' }).click();
    await en.getByTestId('message').filter({ hasText: 'This message was deleted.' }).waitFor();
    await en.getByTestId('message').filter({ hasText: 'còn size L không?' }).filter({ hasText: 'edited' }).waitFor();
  } finally {
    graph.close();
  }
});
