// Accessibility, checked by axe-core in the browser: no critical or serious violation on the login
// page, the conversation view (desktop and phone), the notification settings, the admin pages and
// the widget (open and closed).

import { test } from 'node:test';
import { agentPage, axeAudit, base, browser, DESKTOP, ids, newInbox, pageUrl, PHONE, useWorld, visitorSays } from './support.mjs';

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

  const ui = await agentPage('admin@shop.vn', 'vi-VN', AXE);
  for (const page of ['agents', 'inboxes', 'quick_replies', 'tags', 'reports', 'flows', 'faq']) {
    await ui.getByTestId(`nav-${page}`).click();
    await ui.locator('.admin h2').first().waitFor();
    await axeAudit(ui, `admin: ${page}`);
  }
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
