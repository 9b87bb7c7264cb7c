// Accessibility, checked by axe-core in the browser: no critical or serious violation on the login
// page, the conversation view (desktop and phone), the notification settings, the admin pages and
// the widget (open and closed).

import { test } from 'node:test';
import { agentPage, axeAudit, base, browser, call, DESKTOP, ids, newInbox, pageUrl, PASSWORD, PHONE, useWorld, visitorSays } from './support.mjs';

useWorld();

test('accessibility (axe-core): no critical or serious problem on the login page, the conversation view, the admin pages and the widget', async () => {
  // axe is injected as a script: the test lets it past our Content-Security-Policy.
  const AXE = { ...DESKTOP, bypassCSP: true };
  const ctx = await browser.newContext({ locale: 'vi-VN', ...AXE });
  const login = await ctx.newPage();
  await login.goto(base + '/');
  await login.locator('input[name=email]').waitFor();
  await axeAudit(login, 'login');
  await ctx.close();

  const inbox = await newInbox('Axe shop', [ids.lan]);
  await visitorSays(inbox, 'Cho mình hỏi size áo');
  const lan = await agentPage('lan@shop.vn', 'vi-VN', AXE);
  await lan.getByTestId('conversation-row').filter({ hasText: 'size áo' }).click();
  await lan.getByTestId('claim').click();
  await lan.getByTestId('holder').waitFor();
  await lan.getByTestId('message').first().waitFor();
  await axeAudit(lan, 'conversation view');
  await lan.getByTestId('notification-settings').click();
  await axeAudit(lan, 'notification settings');
  await lan.context().close();
  const phone = await agentPage('lan@shop.vn', 'vi-VN', { ...PHONE, bypassCSP: true });
  await axeAudit(phone, 'conversation list on a phone');
  await phone.context().close();

  // A provider inbox: its setup (what to paste, the connection test) and its settings form with a
  // refused value beside its field.
  const admin = (await call('POST', '/api/v1/auth/login', null, { email: 'admin@shop.vn', password: PASSWORD })).token;
  await call('POST', '/api/v1/inboxes', admin, {
    name: 'Axe WhatsApp',
    channel: 'whatsapp',
    settings: { phone_number_id: '1065', waba_id: '1022', access_token: 't', app_secret: 's', api_base_url: 'http://127.0.0.1:9' },
  });
  const ui = await agentPage('admin@shop.vn', 'vi-VN', AXE);
  for (const page of ['agents', 'inboxes', 'quick_replies', 'tags', 'reports', 'flows', 'faq']) {
    await ui.getByTestId(`nav-${page}`).click();
    await ui.locator('.admin h2').first().waitFor();
    await axeAudit(ui, `admin: ${page}`);
  }
  await ui.getByTestId('nav-inboxes').click();
  const card = ui.locator('.card', { hasText: 'Axe WhatsApp' });
  await card.getByTestId('setup-test').click();
  await card.getByTestId('setup-result').waitFor();
  await card.getByTestId('inbox-edit').click();
  await card.getByTestId('setting-waba_id').fill('không phải số');
  await card.getByTestId('inbox-save').click();
  await card.getByTestId('field-error').waitFor();
  await axeAudit(ui, 'admin: inbox setup and a field error');
  await ui.context().close();

  const vctx = await browser.newContext({ locale: 'vi-VN', bypassCSP: true });
  const visitor = await vctx.newPage();
  await visitor.goto(`${pageUrl}?inbox=${inbox}`);
  await visitor.locator('.bubble').click();
  await visitor.locator('.compose textarea').fill('Xin chào');
  await visitor.locator('.compose textarea').press('Enter');
  await visitor.locator('.m.customer[data-id]').waitFor();
  // The host page's own markup is not ours to judge: only the widget.
  await axeAudit(visitor, 'widget', { include: [['#switchboard-widget']] });
  await visitor.locator('.bubble').click();
  await visitor.locator('.panel').waitFor({ state: 'hidden' });
  await axeAudit(visitor, 'widget (closed)', { include: [['#switchboard-widget']] });
  await vctx.close();
});
