// Browser test of comment rules: an admin creates a rule on a Facebook Page's rules page; a
// customer comments with a phone number; the agent sees the comment still in the thread, marked
// "ẩn tự động: có số điện thoại", and the phone on the customer's profile. A small local server
// stands in for Meta's Graph API (it accepts the hide). The real binary, Chromium driven by
// playwright-core; screenshots in test-artifacts/screenshots/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { createHmac } from 'node:crypto';
import { admin, agentPage, base, call, DESKTOP, freePort, ids, shots, useWorld } from './support.mjs';

useWorld();

test('an admin creates a comment rule and the agent sees a comment hidden with its reason', async () => {
  // Meta's Graph API, as far as hiding a comment goes.
  const graphCalls = [];
  const graph = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      graphCalls.push({ method: req.method, url: req.url, body });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"success":true}');
    });
  });
  const graphPort = await freePort();
  await new Promise((r) => graph.listen(graphPort, '127.0.0.1', r));
  try {
    const secret = 'app-secret-for-the-rules-test';
    const pageId = '777000333';
    const inbox = (
      await call('POST', '/api/v1/inboxes', await admin(), {
        name: 'Fanpage Áo Đẹp',
        channel: 'messenger',
        settings: { page_id: pageId, page_access_token: 'token', app_secret: secret, verify_token: 'verify-me-please', api_base_url: `http://127.0.0.1:${graphPort}/v26.0` },
      })
    ).id;
    await call('PUT', `/api/v1/inboxes/${inbox}/members`, await admin(), { agent_ids: [ids.lan] });

    // The admin adds "a phone number → hide" on the Page's rules page.
    const boss = await agentPage('admin@shop.vn', 'vi-VN', DESKTOP);
    await boss.getByTestId('nav-comment_rules').click();
    await boss.getByTestId('rules-inbox').selectOption(inbox);
    await boss.getByTestId('rule-name').fill('Ẩn số điện thoại');
    await boss.getByTestId('rule-when').selectOption('has_phone');
    await boss.getByTestId('rule-save').click();
    await boss.getByTestId('rule').filter({ hasText: 'Ẩn số điện thoại' }).filter({ hasText: 'có số điện thoại' }).waitFor();
    await boss.screenshot({ path: path.join(shots, 'comment-rules-1-rule.png') });
    const saved = await call('GET', `/api/v1/inboxes/${inbox}/comment-rules`, await admin());
    assert.deepEqual(saved.page.rules.rules[0].do, [{ type: 'hide_comment' }]);

    // A customer comments with a phone number.
    const secs = Math.floor(Date.now() / 1000);
    const body = JSON.stringify({
      object: 'page',
      entry: [{ id: pageId, time: secs, changes: [{ field: 'feed', value: {
        item: 'comment', verb: 'add', comment_id: `${pageId}_1_c1`, post_id: `${pageId}_1`, parent_id: `${pageId}_1`,
        from: { id: 'commenter-1', name: 'Trần Thị Mai' }, message: '0912.345.678 tư vấn em', created_time: secs,
        post: { id: `${pageId}_1`, status_type: 'mobile_status_update', is_published: true },
      } }] }],
    });
    const sig = 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
    const r = await fetch(base + '/webhooks/meta', { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': sig }, body });
    assert.equal(r.status, 200);

    // The agent: the comment is still there, marked why it was hidden; the phone is on the profile.
    const lan = await agentPage('lan@shop.vn', 'vi-VN', DESKTOP);
    await lan.getByTestId('conversation-row').filter({ hasText: 'tư vấn em' }).click();
    const card = lan.getByTestId('message').filter({ hasText: '0912.345.678 tư vấn em' });
    await card.getByTestId('auto-hide').filter({ hasText: 'ẩn tự động: có số điện thoại' }).waitFor();
    await lan.waitForFunction(() => document.querySelector('[data-testid="contact-phone"]')?.value === '+84912345678');
    await lan.screenshot({ path: path.join(shots, 'comment-rules-2-hidden.png') });
    assert.ok(
      graphCalls.some((c) => c.method === 'POST' && c.url.endsWith(`/${pageId}_1_c1`) && JSON.parse(c.body).is_hidden === true),
      JSON.stringify(graphCalls),
    );

    // The posts view counts it.
    await boss.getByTestId('nav-conversations').click();
    await boss.getByTestId('nav-comment_rules').click();
    await boss.getByTestId('rules-inbox').selectOption(inbox);
    const row = boss.getByTestId('post-row').filter({ hasText: `${pageId}_1` });
    await row.getByTestId('post-hidden').filter({ hasText: '1' }).waitFor();

    // This livestream post gets its own rule, which replaces the Page's there.
    await row.getByTestId('post-edit').click();
    const own = row.getByTestId('post-rules');
    await own.getByTestId('rule-name').fill('Báo giá livestream');
    await own.getByTestId('rule-when').selectOption('keywords');
    await own.getByTestId('rule-keywords').fill('giá, bao nhiêu');
    await own.getByTestId('rule-hide').uncheck();
    await own.getByTestId('rule-reply').fill('Shop inbox giá cho {{name}} nhé');
    await own.getByTestId('rule-save').click();
    await own.getByTestId('rule').filter({ hasText: 'Báo giá livestream' }).waitFor();
    await own.getByTestId('post-mode').selectOption('replace');
    await row.filter({ hasText: 'quy tắc riêng (1) thay quy tắc của Trang' }).waitFor();
    await boss.screenshot({ path: path.join(shots, 'comment-rules-3-post-override.png') });
    const rules = await call('GET', `/api/v1/inboxes/${inbox}/comment-rules`, await admin());
    const post = rules.posts.find((p) => p.post_id === `${pageId}_1`);
    assert.equal(post.rules.mode, 'replace');
    assert.deepEqual(post.rules.rules[0].when, [{ type: 'keywords', keywords: ['giá', 'bao nhiêu'], match: 'contains' }]);
    assert.deepEqual(post.rules.rules[0].do, [{ type: 'reply_comment', variants: ['Shop inbox giá cho {{name}} nhé'] }]);
    await boss.context().close();
    await lan.context().close();
  } finally {
    graph.close();
  }
});
