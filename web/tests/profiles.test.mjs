// Browser test of customer profiles: a Messenger customer writes; their name and picture come from
// the channel (a small local server stands in for Meta's profile API and its picture CDN), the
// picture is our copy, shown in the list, the conversation header and the side panel, with the
// header's link to the Business Suite inbox. The customer renames themselves; "sync from channel"
// brings the new name into the header. Screenshots in test-artifacts/screenshots/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { createHmac } from 'node:crypto';
import { admin, agentPage, base, call, DESKTOP, freePort, ids, shots, useWorld } from './support.mjs';

useWorld();

const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAEElEQVR4nGN4kOAARwzEcQB6UhgBOSPoEAAAAABJRU5ErkJggg==', 'base64');

test('the customer’s picture and the open-in-app link show in the header; sync from channel renames', async () => {
  let name = { first_name: 'Mai', last_name: 'Trần' };
  let pictures = 0;
  const graphPort = await freePort();
  const graph = http.createServer((req, res) => {
    if (req.url.startsWith('/pic/')) {
      pictures += 1;
      res.writeHead(200, { 'content-type': 'image/png' });
      return res.end(PNG);
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ...name, id: 'psid-9', profile_pic: `http://127.0.0.1:${graphPort}/pic/mai.png?oh=signed` }));
  });
  await new Promise((r) => graph.listen(graphPort, '127.0.0.1', r));
  try {
    const secret = 'app-secret-for-the-profiles-test';
    const pageId = '777000555';
    const settings = { page_id: pageId, page_access_token: 'token', app_secret: secret, verify_token: 'verify-me-please', api_base_url: `http://127.0.0.1:${graphPort}/v26.0` };
    const inbox = (await call('POST', '/api/v1/inboxes', await admin(), { name: 'Fanpage Mai', channel: 'messenger', settings })).id;
    await call('PUT', `/api/v1/inboxes/${inbox}/members`, await admin(), { agent_ids: [ids.lan] });
    const body = JSON.stringify({ object: 'page', entry: [{ id: pageId, time: Date.now(), messaging: [
      { sender: { id: 'psid-9' }, recipient: { id: pageId }, timestamp: Date.now(), message: { mid: 'm_profile_1', text: 'Váy hoa còn không shop?' } }] }] });
    const sig = 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
    const r = await fetch(base + '/webhooks/meta', { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': sig }, body });
    assert.equal(r.status, 200);

    const lan = await agentPage('lan@shop.vn', 'vi-VN', DESKTOP);
    // The profile is fetched off the webhook's path: the row shows the name and picture once it is in.
    const row = lan.getByTestId('conversation-row').filter({ hasText: 'Váy hoa' });
    await row.filter({ hasText: 'Mai Trần' }).waitFor();
    await row.getByTestId('row-avatar').waitFor();
    await row.click();

    const avatar = lan.getByTestId('chat-avatar');
    await avatar.waitFor();
    const src = await avatar.getAttribute('src');
    assert.ok(src.startsWith('/api/v1/contacts/') && src.includes('/avatar?v='), `our copy, not the CDN's URL: ${src}`);
    assert.equal(await avatar.evaluate((img) => img.complete && img.naturalWidth), 4, 'the picture loads from our media route');
    assert.equal(pictures, 1);
    const link = lan.getByTestId('open-in-app');
    assert.equal(await link.getAttribute('href'), `https://business.facebook.com/latest/inbox/all?asset_id=${pageId}`);
    assert.equal(await link.getAttribute('target'), '_blank');
    assert.equal((await link.textContent()).trim(), 'Mở trong ứng dụng');
    await lan.getByTestId('contact-avatar').waitFor();
    assert.equal(await lan.getByTestId('name-source').textContent(), 'Lấy từ kênh');
    await lan.screenshot({ path: path.join(shots, 'profiles-1-header.png') });

    // The customer renames themselves on Facebook; the agent syncs from the channel.
    name = { first_name: 'Mai Anh', last_name: 'Trần' };
    await lan.getByTestId('sync-profile').click();
    await lan.getByTestId('synced').waitFor();
    await lan.getByTestId('chat-title').filter({ hasText: 'Mai Anh Trần' }).waitFor();
    assert.equal(await lan.getByTestId('contact-name').inputValue(), 'Mai Anh Trần');
    await lan.screenshot({ path: path.join(shots, 'profiles-2-synced.png') });

    // A name the agent types is theirs: saved, shown in the header, marked as typed.
    await lan.getByTestId('contact-name').fill('Chị Mai (khách sỉ)');
    await lan.getByTestId('contact-save').click();
    await lan.getByTestId('chat-title').filter({ hasText: 'Chị Mai (khách sỉ)' }).waitFor();
    assert.equal(await lan.getByTestId('name-source').textContent(), 'Do nhân viên nhập: giữ nguyên cho đến khi đồng bộ từ kênh');
    await lan.close();
  } finally {
    graph.close();
  }
});
