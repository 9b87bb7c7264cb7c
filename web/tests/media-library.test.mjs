// Browser tests of the saved-media library and of files in the composer: a supervisor adds the
// price list to the library and to the quick reply "/banggia"; an agent picks it from the library
// into a reply, then sends the quick reply, which brings the picture with its text. Files wait in
// the composer's tray with their previews until Send. A screenshot pasted into the composer goes
// to a Messenger customer as an image attachment. Screenshots in test-artifacts/screenshots/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { createHmac } from 'node:crypto';
import { admin, agentPage, base, call, DESKTOP, freePort, ids, newInbox, shots, useWorld, visitorSays } from './support.mjs';

useWorld();

// A real 2×2 PNG.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==', 'base64');

test('the library: a supervisor keeps it, an agent sends from it and from a quick reply that carries a picture', async () => {
  const inbox = await newInbox('Library shop', [ids.lan]);
  const boss = await agentPage('admin@shop.vn', 'vi-VN', DESKTOP);
  await boss.getByTestId('nav-library').click();
  const page = boss.getByTestId('library-page');
  await page.getByTestId('library-file').setInputFiles({ name: 'bang-gia.png', mimeType: 'image/png', buffer: PNG });
  await page.getByLabel('Tên', { exact: true }).fill('Bảng giá tháng 12');
  await page.getByLabel('Nhãn, cách nhau bằng dấu phẩy').fill('giá, Tết');
  await page.getByRole('button', { name: 'Tạo' }).click();
  const row = page.getByTestId('library-row').filter({ hasText: 'Bảng giá tháng 12' });
  await row.filter({ hasText: '#tết' }).waitFor();
  await boss.waitForFunction(() => [...document.querySelectorAll('.library-grid img')].some((i) => i.complete && i.naturalWidth === 2));
  // Found without diacritics.
  await page.getByLabel('Tìm theo tên hoặc nhãn').fill('bang gia');
  await row.waitFor();
  await boss.screenshot({ path: path.join(shots, 'library-1-page.png') });

  // The quick reply "/banggia" carries the picture.
  await boss.getByTestId('nav-quick_replies').click();
  await boss.getByLabel('Mã', { exact: true }).fill('banggia');
  await boss.getByLabel('Nội dung', { exact: true }).fill('Dạ em gửi bảng giá ạ');
  await boss.getByTestId('qr-add-file').click();
  await boss.getByTestId('library-picker').getByLabel('Tìm theo tên hoặc nhãn').fill('tet');
  await boss.getByTestId('library-item').filter({ hasText: 'Bảng giá tháng 12' }).click();
  await boss.getByRole('button', { name: 'Tạo' }).click();
  await boss.locator('tr', { hasText: '/banggia' }).filter({ hasText: 'Bảng giá tháng 12' }).waitFor();

  // An agent answers a customer: the picture from the library, with a caption.
  await visitorSays(inbox, 'Shop cho xin bảng giá');
  const lan = await agentPage('lan@shop.vn', 'en-US', DESKTOP);
  await lan.getByTestId('conversation-row').filter({ hasText: 'bảng giá' }).click();
  await lan.getByTestId('claim').click();
  await lan.getByTestId('open-library').click();
  await lan.getByTestId('library-item').filter({ hasText: 'Bảng giá tháng 12' }).click();
  const tray = lan.getByTestId('tray-item');
  await tray.filter({ hasText: 'bang-gia.png' }).waitFor();
  await lan.getByTestId('composer-input').fill('Giá mới nhất ạ');
  await lan.screenshot({ path: path.join(shots, 'library-2-tray.png') });
  await lan.getByTestId('send').click();
  const sent = lan.getByTestId('message').filter({ hasText: 'Giá mới nhất ạ' });
  await sent.locator('img[alt="bang-gia.png"]').waitFor();
  assert.equal(await tray.count(), 0, 'the tray is empty once sent');

  // The quick reply brings its picture into the tray with its text; one Send sends both.
  await lan.getByTestId('composer-input').fill('/bangg');
  await lan.getByTestId('quick-reply').filter({ hasText: '/banggia' }).click();
  await tray.filter({ hasText: 'bang-gia.png' }).waitFor();
  assert.equal(await lan.getByTestId('composer-input').inputValue(), 'Dạ em gửi bảng giá ạ');
  await lan.getByTestId('send').click();
  await lan.getByTestId('message').filter({ hasText: 'Dạ em gửi bảng giá ạ' }).locator('img[alt="bang-gia.png"]').waitFor();
  await lan.waitForFunction(() => [...document.querySelectorAll('[data-testid=message] img')].filter((i) => i.complete && i.naturalWidth === 2).length === 2);
  await lan.screenshot({ path: path.join(shots, 'library-3-sent.png') });

  // A file taken out of the tray is not sent.
  await lan.getByTestId('open-library').click();
  await lan.getByTestId('library-item').first().click();
  await lan.getByRole('button', { name: 'Remove bang-gia.png' }).click();
  assert.equal(await tray.count(), 0);
  await boss.context().close();
  await lan.context().close();
});

test('a picture pasted into the composer goes to a Messenger customer', async () => {
  // Meta's Graph API stands in: the profile answers a name, the Send API takes the attachment.
  const sends = [];
  const graph = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      if (req.method === 'POST' && req.url.includes('/messages')) {
        sends.push(JSON.parse(body || '{}'));
        res.end(JSON.stringify({ recipient_id: 'psid-paste', message_id: `m_sent_${sends.length}` }));
      } else res.end('{"name":"Phạm Thu"}');
    });
  });
  const graphPort = await freePort();
  await new Promise((r) => graph.listen(graphPort, '127.0.0.1', r));
  try {
    const secret = 'app-secret-for-the-paste-test';
    const pageId = '777000555';
    const settings = { page_id: pageId, page_access_token: 'token', app_secret: secret, verify_token: 'verify-me-please', api_base_url: `http://127.0.0.1:${graphPort}/v26.0` };
    const inbox = (await call('POST', '/api/v1/inboxes', await admin(), { name: 'Fanpage dán ảnh', channel: 'messenger', settings })).id;
    await call('PUT', `/api/v1/inboxes/${inbox}/members`, await admin(), { agent_ids: [ids.lan] });
    const body = JSON.stringify({ object: 'page', entry: [{ id: pageId, time: Date.now(), messaging: [{ sender: { id: 'psid-paste' }, recipient: { id: pageId }, timestamp: Date.now(), message: { mid: 'm_paste_1', text: 'Gửi mình ảnh mẫu với' } }] }] });
    const sig = 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
    const r = await fetch(base + '/webhooks/meta', { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': sig }, body });
    assert.equal(r.status, 200);

    const lan = await agentPage('lan@shop.vn', 'vi-VN', DESKTOP);
    await lan.getByTestId('conversation-row').filter({ hasText: 'ảnh mẫu' }).click();
    await lan.getByTestId('claim').click();
    // Once the reply may be written (the claim answered, the window read)...
    await lan.waitForFunction(() => {
      const box = document.querySelector('[data-testid=composer-input]');
      const reply = document.querySelector('[data-testid=mode-reply]');
      return box && !box.disabled && reply && !reply.disabled;
    });
    // ...the clipboard holds a screenshot: pasting puts it in the tray, named for what it is.
    await lan.getByTestId('composer-input').evaluate((el, b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'image.png', { type: 'image/png' }));
      el.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    }, PNG.toString('base64'));
    const item = lan.getByTestId('tray-item').filter({ hasText: 'ảnh dán' });
    await item.waitFor();
    assert.equal(await item.locator('img').count(), 1, 'a preview before sending');
    await lan.screenshot({ path: path.join(shots, 'paste-1-tray.png') });
    await lan.getByTestId('send').click();
    await lan.getByTestId('message').locator('img[alt^="ảnh dán"]').waitFor();
    // Meta received an image attachment (by a URL it fetches from us), not a text.
    for (let i = 0; i < 100 && sends.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(sends.length, 1, JSON.stringify(sends));
    assert.equal(sends[0].message?.attachment?.type, 'image', JSON.stringify(sends[0]));
    assert.equal(sends[0].recipient?.id, 'psid-paste');
    await lan.screenshot({ path: path.join(shots, 'paste-2-sent.png') });
    await lan.context().close();
  } finally {
    graph.close();
  }
});
