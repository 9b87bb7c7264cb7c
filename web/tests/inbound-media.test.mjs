// Browser test of customers' files: a Messenger customer sends a photo and a second one whose
// first download fails. The agent sees the photo in the thread (our thumbnail of our copy, not
// the provider's URL) and, for the other, that it could not be downloaded with a retry button;
// the retry brings the photo. The gallery lists both. The real binary (its download worker on),
// Chromium driven by playwright-core; a small local server stands in for Meta's profile API and
// its CDN. Screenshots in test-artifacts/screenshots/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { createHmac } from 'node:crypto';
import { admin, agentPage, base, call, DESKTOP, freePort, ids, shots, useWorld } from './support.mjs';

useWorld();

// A 4×4 orange PNG.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAEElEQVR4nGN4kOAARwzEcQB6UhgBOSPoEAAAAABJRU5ErkJggg==', 'base64');

test('the agent sees a customer photo in the thread, and retries one whose download failed', async () => {
  const hits = { 'photo.jpg': 0, 'broken.jpg': 0 };
  const cdn = http.createServer((req, res) => {
    const name = req.url.split('/').pop();
    if (name in hits) {
      hits[name] += 1;
      // The second photo's first download fails (the CDN says it is gone); later it is there.
      if (name === 'broken.jpg' && hits[name] === 1) {
        res.writeHead(404);
        return res.end();
      }
      res.writeHead(200, { 'content-type': 'image/jpeg' });
      return res.end(PNG);
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"name":"Phạm Thu"}');
  });
  const port = await freePort();
  await new Promise((r) => cdn.listen(port, '127.0.0.1', r));
  try {
    const secret = 'app-secret-for-the-media-test';
    const pageId = '777000666';
    const inbox = (
      await call('POST', '/api/v1/inboxes', await admin(), {
        name: 'Fanpage Ảnh',
        channel: 'messenger',
        settings: { page_id: pageId, page_access_token: 'token', app_secret: secret, verify_token: 'verify-me-please', api_base_url: `http://127.0.0.1:${port}/v26.0` },
      })
    ).id;
    await call('PUT', `/api/v1/inboxes/${inbox}/members`, await admin(), { agent_ids: [ids.lan] });
    const send = async (mid, name, text) => {
      const body = JSON.stringify({
        object: 'page',
        entry: [{ id: pageId, time: Date.now(), messaging: [{ sender: { id: 'psid-photo' }, recipient: { id: pageId }, timestamp: Date.now(), message: { mid, text, attachments: [{ type: 'image', payload: { url: `http://127.0.0.1:${port}/cdn/${name}` } }] } }] }],
      });
      const sig = 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
      const r = await fetch(base + '/webhooks/meta', { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': sig }, body });
      assert.equal(r.status, 200);
    };
    await send('m_photo_1', 'photo.jpg');

    const lan = await agentPage('lan@shop.vn', 'vi-VN', DESKTOP);
    await lan.getByTestId('conversation-row').filter({ hasText: '[image]' }).first().click();
    const first = lan.getByTestId('message').first().getByTestId('file-image');
    await first.waitFor();
    const src = await first.getAttribute('src');
    assert.match(src, /^\/api\/v1\/media\/[0-9a-f-]+\/thumbnail$/, 'our thumbnail, not the provider URL');
    assert.equal(await first.evaluate((img) => img.complete && img.naturalWidth > 0), true, 'the thumbnail loads');

    // The second photo's download fails: the thread says so and offers a retry, live.
    await send('m_photo_2', 'broken.jpg', 'ảnh thứ hai');
    const second = lan.getByTestId('message').filter({ hasText: 'ảnh thứ hai' });
    await second.getByTestId('file-failed').filter({ hasText: 'Không tải được tệp' }).waitFor();
    await lan.screenshot({ path: path.join(shots, 'inbound-media-1-failed.png') });
    await second.getByTestId('file-retry').filter({ hasText: 'Thử lại' }).click();
    await second.getByTestId('file-image').waitFor();
    assert.equal(hits['broken.jpg'], 2);
    assert.equal(hits['photo.jpg'], 1, 'each photo downloaded once');
    await lan.screenshot({ path: path.join(shots, 'inbound-media-2-retried.png') });

    // The gallery lists both.
    await lan.getByTestId('side-media').click();
    await lan.locator('.gallery').getByTestId('file-image').nth(1).waitFor();
    assert.equal(await lan.locator('.gallery').getByTestId('file-image').count(), 2);

    // Instagram: never downloaded, shown from its URL; once that is gone, the thread says so.
    const igId = '17841000666';
    const ig = (
      await call('POST', '/api/v1/inboxes', await admin(), {
        name: 'IG Ảnh',
        channel: 'instagram',
        settings: { ig_account_id: igId, page_access_token: 'token', app_secret: secret, verify_token: 'verify-me-please', api_base_url: `http://127.0.0.1:${port}/v26.0` },
      })
    ).id;
    await call('PUT', `/api/v1/inboxes/${ig}/members`, await admin(), { agent_ids: [ids.lan] });
    const body = JSON.stringify({
      object: 'instagram',
      entry: [{ id: igId, time: Date.now(), messaging: [{ sender: { id: 'igsid-photo' }, recipient: { id: igId }, timestamp: Date.now(), message: { mid: 'aWdf_gone', text: 'ảnh cũ', attachments: [{ type: 'image', payload: { url: `http://127.0.0.1:${port}/cdn/gone.jpg` } }] } }] }],
    });
    const sig = 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
    assert.equal((await fetch(base + '/webhooks/meta', { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': sig }, body })).status, 200);
    await lan.getByTestId('conversation-row').filter({ hasText: 'ảnh cũ' }).click();
    await lan.getByTestId('message').filter({ hasText: 'ảnh cũ' }).getByTestId('file-expired').filter({ hasText: 'Tệp này đã hết hạn trên Instagram.' }).waitFor();
    await lan.screenshot({ path: path.join(shots, 'inbound-media-3-instagram-expired.png') });
  } finally {
    cdn.close();
  }
});
