// The agent app on a phone (390×844, touch) and, with the same steps, on a 1440×900 screen:
// take a waiting customer, answer with a quick reply, write a note, look at the customer,
// transfer, go back to the list — never scrolling sideways. Then the installed app offline.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { agentPage, base, browser, call, DESKTOP, ids, noSidewaysScroll, pageUntil, pageUrl, PASSWORD, PHONE, SHIPFREE, shots, useWorld } from './support.mjs';

useWorld();

/** Visible controls smaller than a fingertip (44 px) in the app's chrome. */
async function smallTargets(page) {
  return page.evaluate(() => {
    const out = [];
    for (const el of document.querySelectorAll('.main button, .main select, .main input:not([type=checkbox]):not([type=radio]), .main textarea, .topbar button')) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0 || el.closest('.bubble')) continue;
      if (r.height < 44 || r.width < 44) out.push(`${el.tagName.toLowerCase()}[${el.getAttribute('data-testid') ?? el.textContent.trim().slice(0, 20)}] ${Math.round(r.width)}×${Math.round(r.height)}`);
    }
    return out;
  });
}

async function conversationFlow(device, label) {
  const phone = device === PHONE;
  const tap = (locator) => (phone ? locator.tap() : locator.click());
  const admin = (await call('POST', '/api/v1/auth/login', null, { email: 'admin@shop.vn', password: PASSWORD })).token;
  const inbox = (await call('POST', '/api/v1/inboxes', admin, { name: `${label} shop`, channel: 'livechat' })).id;
  await call('PUT', `/api/v1/inboxes/${inbox}/members`, admin, { agent_ids: [ids.lan, ids.minh] });
  const lan = await agentPage('lan@shop.vn', 'en-US', device);
  const shot = (name) => lan.screenshot({ path: path.join(shots, `${label}-${name}.png`) });

  // A customer writes on the shop's site.
  const visitor = await (await browser.newContext({ locale: 'en-US', ...device })).newPage();
  await visitor.goto(`${pageUrl}?inbox=${inbox}`);
  await visitor.locator('.bubble').click();
  const question = `Do you ship to Da Nang? (${label})`;
  await visitor.locator('.compose textarea').fill(question);
  await visitor.locator('.compose textarea').press('Enter');
  await visitor.locator('.m.customer[data-id]', { hasText: question }).waitFor();

  // The list: the customer waits, the tab says how many.
  const row = lan.getByTestId('conversation-row').filter({ hasText: question });
  await row.waitFor();
  await lan.getByTestId('count-unassigned').waitFor();
  await noSidewaysScroll(lan, `${label}: the list`);
  await shot('1-list');

  // Open it: on a phone the conversation takes the whole screen.
  await tap(row);
  await lan.getByTestId('claim').waitFor();
  if (phone) {
    await lan.getByTestId('conversation-list').waitFor({ state: 'hidden' });
    assert.deepEqual(await smallTargets(lan), [], 'every control is at least 44 px');
  }
  const customer = await lan.locator('.chat-head .title').innerText();
  await tap(lan.getByTestId('claim'));
  await lan.getByTestId('holder').filter({ hasText: 'You are handling' }).waitFor();
  await noSidewaysScroll(lan, `${label}: the conversation`);

  // A quick reply, picked by touch.
  const input = lan.getByTestId('composer-input');
  await input.click();
  await input.pressSequentially('/sh');
  await lan.getByTestId('quick-reply').nth(1).waitFor();
  await tap(lan.getByTestId('quick-reply').filter({ hasText: SHIPFREE }));
  assert.equal(await input.inputValue(), SHIPFREE);
  await tap(lan.getByTestId('send'));
  await lan.getByTestId('message').filter({ hasText: SHIPFREE }).waitFor();
  await visitor.locator('.m.agent', { hasText: SHIPFREE }).waitFor();
  await shot('2-replied');
  if (phone) {
    // The phone keyboard's Enter starts a new line; Send sends.
    await input.fill('Size M is in stock.');
    await input.press('Enter');
    assert.equal(await input.inputValue(), 'Size M is in stock.\n', 'Enter did not send');
    await input.pressSequentially('Size L too.');
    await tap(lan.getByTestId('send'));
    await visitor.locator('.m.agent', { hasText: 'Size L too.' }).waitFor();
  }

  // With the on-screen keyboard up (the visible height shrinks), the composer stays in view.
  if (phone) {
    await lan.setViewportSize({ width: 390, height: 420 });
    await lan.waitForFunction(() => document.documentElement.style.getPropertyValue('--app-height') === `${window.visualViewport.height}px`);
    const send = await lan.getByTestId('send').boundingBox();
    const box = await input.boundingBox();
    assert.ok(send && send.y + send.height <= 420, `the send button is above the keyboard (${JSON.stringify(send)})`);
    assert.ok(box && box.y >= 0 && box.y + box.height <= 420, 'the text field is above the keyboard');
    await shot('3-keyboard');
    await lan.setViewportSize(PHONE.viewport);
  }

  // A private note.
  await tap(lan.getByTestId('mode-note'));
  await input.fill('Asked about shipping to Da Nang');
  await tap(lan.getByTestId('send'));
  await lan.locator('[data-testid=message][data-kind=note]', { hasText: 'shipping to Da Nang' }).waitFor();
  await tap(lan.getByTestId('mode-reply'));

  // The customer's details: a view of their own on a phone, and back.
  if (phone) {
    await tap(lan.getByTestId('customer-info'));
    await lan.getByTestId('contact-phone').waitFor();
    await lan.getByTestId('chat-pane').waitFor({ state: 'hidden' });
    await noSidewaysScroll(lan, `${label}: the customer`);
    await shot('4-customer');
    await tap(lan.getByTestId('side-back'));
    await lan.getByTestId('composer-input').waitFor();
  } else {
    await lan.getByTestId('contact-phone').waitFor();
  }

  // Transfer to Minh with a message.
  await tap(lan.getByTestId('transfer'));
  await lan.getByTestId('dialog-agent').selectOption(ids.minh);
  await lan.getByTestId('dialog-message').fill('Please take the Da Nang order');
  await noSidewaysScroll(lan, `${label}: the transfer dialog`);
  await tap(lan.getByTestId('dialog-confirm'));
  await lan.getByTestId('holder').filter({ hasText: 'Claimed by Minh' }).waitFor();
  await shot('5-transferred');

  // Back to the list: our back button, then the phone's.
  if (phone) {
    await tap(lan.getByTestId('back'));
    await lan.getByTestId('conversation-list').waitFor();
    await lan.getByTestId('chat-pane').waitFor({ state: 'hidden' });
    await tap(lan.getByTestId('tab-all'));
    await tap(lan.getByTestId('conversation-row').filter({ hasText: customer }));
    await lan.getByTestId('thread').waitFor();
    await lan.goBack();
    await lan.getByTestId('conversation-list').waitFor();
    await lan.getByTestId('thread').waitFor({ state: 'hidden' });
  } else {
    // On a wide screen the list never went away.
    await lan.getByTestId('conversation-list').waitFor();
  }
  await noSidewaysScroll(lan, `${label}: back on the list`);
  await shot('6-back-to-list');
  await visitor.context().close();
  return lan;
}

test('on a phone: take a customer, quick reply, note, customer details, transfer, back — no sideways scrolling', async () => {
  const lan = await conversationFlow(PHONE, 'phone');
  // The menu opens the other pages.
  await lan.getByTestId('menu').tap();
  await lan.getByTestId('nav-conversations').waitFor();
  await noSidewaysScroll(lan, 'phone: the menu');
  await lan.screenshot({ path: path.join(shots, 'phone-7-menu.png') });
  await lan.context().close();
});

test('on a 1440×900 screen the same steps work, with list, conversation and customer side by side', async () => {
  const lan = await conversationFlow(DESKTOP, 'desktop');
  for (const id of ['conversation-list', 'chat-pane', 'side-panel']) assert.ok(await lan.getByTestId(id).isVisible(), `${id} is visible`);
  assert.equal(await lan.getByTestId('back').isVisible(), false, 'no back button on a wide screen');
  await lan.context().close();
});

test('the installable app: a manifest with icons, and offline it opens and says so (in Vietnamese too)', async () => {
  const manifest = await (await fetch(base + '/manifest.webmanifest')).json();
  assert.equal(manifest.display, 'standalone');
  assert.equal(manifest.start_url, '/');
  for (const size of ['192x192', '512x512']) {
    const icon = manifest.icons.find((i) => i.sizes === size);
    assert.ok(icon, `an icon of ${size}`);
    const r = await fetch(base + icon.src);
    assert.equal(r.headers.get('content-type'), 'image/png');
  }
  const sw = await fetch(base + '/sw.js');
  assert.match(sw.headers.get('content-type'), /javascript/);
  assert.equal(sw.headers.get('cache-control'), 'no-cache');

  const lan = await agentPage('lan@shop.vn', 'vi-VN', PHONE);
  // The service worker has kept the shell and controls the page.
  await lan.evaluate(() => navigator.serviceWorker.ready);
  await lan.reload();
  await lan.waitForFunction(() => navigator.serviceWorker.controller !== null);
  await lan.getByTestId('conversation-list').waitFor();
  await lan.context().setOffline(true);
  await lan.reload();
  await lan.getByTestId('offline').filter({ hasText: 'Bạn đang ngoại tuyến' }).waitFor();
  await lan.screenshot({ path: path.join(shots, 'phone-8-offline.png') });
  // Back online, the app comes back by itself.
  await lan.context().setOffline(false);
  await lan.getByTestId('conversation-list').waitFor();
  await lan.context().close();
});

test('a push while Switchboard is closed: the service worker shows it in the agent\'s language, and its link opens the conversation', async () => {
  const visitor = (await call('POST', '/widget/v1/sessions', null, { inbox_id: ids.inbox, name: 'Chị Mai' })).token;
  const conv = (await call('POST', '/widget/v1/messages', visitor, { text: 'Cho mình đổi size nhé' })).message.conversation_id;
  const lan = await agentPage('lan@shop.vn', 'vi-VN', PHONE);
  await lan.context().grantPermissions(['notifications'], { origin: base });
  await lan.evaluate(() => navigator.serviceWorker.ready);
  // The app left the service worker its strings, in Vietnamese.
  await pageUntil(lan, 'the strings for pushes', async () => !!(await (await caches.open('switchboard-shell-v1')).match('/__switchboard/push-strings')));

  // The push service delivers a push (as Chromium's DevTools protocol lets a test do).
  const cdp = await lan.context().newCDPSession(lan);
  const registration = new Promise((resolve) =>
    cdp.on('ServiceWorker.workerRegistrationUpdated', ({ registrations }) => {
      const r = registrations.find((x) => x.scopeURL === base + '/' && !x.isDeleted);
      if (r) resolve(r.registrationId);
    }),
  );
  await cdp.send('ServiceWorker.enable');
  const registrationId = await registration;
  await cdp.send('ServiceWorker.deliverPushMessage', {
    origin: base,
    registrationId,
    data: JSON.stringify({ kind: 'transferred', conversation_id: conv, name: 'Chị Mai' }),
  });
  const title = 'Hội thoại với Chị Mai đã được chuyển cho bạn';
  const shown = await pageUntil(
    lan,
    'the notification',
    async (t) => (await (await navigator.serviceWorker.ready).getNotifications()).map((n) => ({ title: n.title, data: n.data })).find((n) => n.title === t),
    title,
  );
  assert.deepEqual(shown.data, { conversation_id: conv });

  // Tapping it opens /?conversation=ID when no window is open: the conversation shows.
  await lan.goto(`${base}/?conversation=${conv}`);
  await lan.getByTestId('thread').getByText('Cho mình đổi size nhé').waitFor();
  assert.equal(new URL(lan.url()).search, '', 'the address is clean again');
  await lan.screenshot({ path: path.join(shots, 'phone-9-opened-from-push.png') });
  await lan.context().close();
});
