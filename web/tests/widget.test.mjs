// The widget on a customer's phone: the pre-chat form first, its answers kept, the start button
// full size, and an unread badge with a chime for replies while the panel is closed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { agentPage, browser, DESKTOP, ids, newInbox, pageUrl, PHONE, shots, useWorld } from './support.mjs';

useWorld();

test('the widget: the pre-chat form comes first, its answers are kept and name the customer; replies while closed show a badge and chime', async () => {
  const inbox = await newInbox('Pre-chat first', [ids.lan], { greeting: 'Chào bạn!', prechat_fields: ['name', 'phone'] });
  const ctx = await browser.newContext({ locale: 'vi-VN', ...PHONE });
  await ctx.addInitScript(() => {
    window.__chimes = 0;
    document.addEventListener('switchboard:sound', () => window.__chimes++);
  });
  const visitor = await ctx.newPage();
  await visitor.goto(`${pageUrl}?inbox=${inbox}`);
  await visitor.locator('.bubble').click();
  const form = visitor.locator('form.pre');
  await form.waitFor();
  assert.equal(await visitor.locator('.compose textarea').isVisible(), false, 'nothing can be written before the form');
  const start = await form.locator('button').boundingBox();
  assert.ok(start.height >= 44 && start.width >= 200, `the start button is full size (${start.width}×${start.height})`);
  await visitor.screenshot({ path: path.join(shots, 'widget-1-prechat-first.png') });

  // Typed, then the page reloads: the answers are still there.
  await form.getByLabel('Your name').fill('Chị Hoa');
  await visitor.reload();
  await visitor.locator('.bubble').click();
  assert.equal(await visitor.locator('form.pre').getByLabel('Your name').inputValue(), 'Chị Hoa');
  // A phone number the shop cannot use is said beside the phone field, not as "something went wrong".
  await visitor.locator('form.pre').getByLabel('Phone').fill('09 12');
  await visitor.locator('form.pre button').click();
  const beside = visitor.locator('form.pre label:has(input[name=phone]) + .err');
  await beside.filter({ hasText: 'Please check your phone number' }).waitFor();
  assert.equal(await visitor.locator('form.pre input[name=phone]').getAttribute('aria-invalid'), 'true');
  await visitor.locator('form.pre').getByLabel('Phone').fill('0912 345 678');
  await visitor.locator('form.pre button').click();
  await visitor.locator('.m.agent', { hasText: 'Chào bạn!' }).waitFor();
  await visitor.locator('.compose textarea').fill('Cho mình hỏi giá áo khoác');
  await visitor.locator('.compose textarea').press('Enter');
  await visitor.locator('.m.customer[data-id]', { hasText: 'áo khoác' }).waitFor();

  // The agent sees the customer by name from the first message on.
  const lan = await agentPage('lan@shop.vn', 'en-US', DESKTOP);
  const row = lan.getByTestId('conversation-row').filter({ hasText: 'Chị Hoa' });
  await row.filter({ hasText: 'áo khoác' }).waitFor();
  await row.click();
  assert.equal(await lan.getByTestId('contact-name').inputValue(), 'Chị Hoa');
  await lan.getByTestId('claim').click();

  // The visitor closes the panel; the shop answers: a badge on the bubble, and a chime.
  await visitor.locator('.bubble').click();
  await visitor.locator('.panel').waitFor({ state: 'hidden' });
  const input = lan.getByTestId('composer-input');
  await input.fill('Dạ áo khoác giá 450.000đ ạ');
  await input.press('Enter');
  await visitor.locator('.badge', { hasText: '1' }).waitFor();
  await visitor.waitForFunction(() => window.__chimes === 1);
  assert.match(await visitor.locator('.bubble').getAttribute('aria-label'), /Open chat \(1 new\)/);
  await visitor.screenshot({ path: path.join(shots, 'widget-2-unread-badge.png') });
  await visitor.locator('.bubble').click();
  await visitor.locator('.m.agent', { hasText: '450.000đ' }).waitFor();
  await visitor.locator('.badge').waitFor({ state: 'hidden' });
  await ctx.close();
  await lan.context().close();
});

test('a visitor sends a picture from the widget and the agent sees it in the thread; a file the shop cannot take is refused in words', async () => {
  const inbox = await newInbox('Widget files', [ids.lan]);
  const ctx = await browser.newContext({ locale: 'vi-VN', ...PHONE });
  const visitor = await ctx.newPage();
  await visitor.goto(`${pageUrl}?inbox=${inbox}`);
  await visitor.locator('.bubble').click();
  await visitor.locator('.compose textarea').fill('Shop xem giúp mẫu này');
  await visitor.locator('.compose textarea').press('Enter');
  await visitor.locator('.m.customer[data-id]', { hasText: 'mẫu này' }).waitFor();
  // A real 1×1 PNG, put in the clip button's file picker.
  assert.ok(await visitor.getByRole('button', { name: 'Send a picture or file' }).isVisible());
  const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
  await visitor.locator('.compose input[type=file]').setInputFiles({ name: 'mẫu váy.png', mimeType: 'image/png', buffer: png });
  await visitor.locator('.m.customer[data-id] img').waitFor();
  // An archive is refused by its bytes, and the visitor is told why.
  await visitor.locator('.compose input[type=file]').setInputFiles({ name: 'don-hang.zip', mimeType: 'application/zip', buffer: Buffer.from('PK\x03\x04 zip') });
  await visitor.locator('.m.failed', { hasText: 'Only pictures, videos, sound and PDF' }).waitFor();
  await visitor.screenshot({ path: path.join(shots, 'widget-3-visitor-file.png') });

  // The agent sees the picture in the thread and in the side panel's media.
  const lan = await agentPage('lan@shop.vn', 'en-US', DESKTOP);
  await lan.getByTestId('conversation-row').filter({ hasText: 'mẫu váy.png' }).click();
  const pic = lan.getByTestId('message').locator('.attachments img[alt="mẫu váy.png"]');
  await pic.waitFor();
  await lan.waitForFunction(() => [...document.querySelectorAll('.attachments img')].some((i) => i.complete && i.naturalWidth === 1));
  await ctx.close();
  await lan.context().close();
});

test('the widget stays within its size budget (10 kB gzipped)', async () => {
  const { gzipSync } = await import('node:zlib');
  const { readFileSync } = await import('node:fs');
  const js = readFileSync(path.join(import.meta.dirname, '../dist/widget.js'));
  const size = gzipSync(js, { level: 9 }).length;
  assert.ok(size <= 10 * 1024, `widget.js is ${size} bytes gzipped`);
});
