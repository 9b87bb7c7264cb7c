// Channel setup as a shop's admin does it: what to paste at the provider, the connection test
// (the channel sandbox answers as WhatsApp would), a token rotated by editing the settings, and a
// refused value shown beside its field, in words.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { agentPage, base, call, channelSandbox, PASSWORD, shots, useWorld } from './support.mjs';

useWorld();

test('an admin pastes the webhook, tests the connection, rotates a refused token and is told why', async () => {
  const admin = (await call('POST', '/api/v1/auth/login', null, { email: 'admin@shop.vn', password: PASSWORD })).token;
  const { proc, settings } = await channelSandbox();
  try {
    // Connected with a token the provider refuses (an old one).
    const { verify_token: _, ...given } = settings;
    await call('POST', '/api/v1/inboxes', admin, { name: 'WhatsApp cửa hàng', channel: 'whatsapp', settings: { ...given, access_token: 'revoked-token' } });
    const ui = await agentPage('admin@shop.vn');
    await ui.getByTestId('nav-inboxes').click();
    const card = ui.locator('.card', { hasText: 'WhatsApp cửa hàng' });
    assert.equal(await card.getByTestId('setup-webhook-url').innerText(), `${base}/webhooks/whatsapp`);
    assert.ok((await card.getByTestId('setup-verify-token').innerText()).length >= 32, 'a generated verify token to paste');

    await card.getByTestId('setup-test').click();
    await card.getByTestId('setup-result').filter({ hasText: 'Not connected: the provider refused the token or key' }).waitFor();

    // A value the API refuses is explained beside its field, not as raw text under the form.
    await card.getByTestId('inbox-edit').click();
    const form = card.getByTestId('inbox-edit-form');
    await form.getByTestId('setting-phone_number_id').fill('not a number');
    await form.getByTestId('inbox-save').click();
    const beside = form.locator('.field', { has: ui.getByTestId('setting-phone_number_id') }).getByTestId('field-error');
    await beside.filter({ hasText: 'Check this value.' }).waitFor();
    assert.equal(await form.getByTestId('setting-phone_number_id').getAttribute('aria-invalid'), 'true');
    assert.doesNotMatch(await card.innerText(), /wrong type or value|settings:/);
    await ui.screenshot({ path: path.join(shots, 'setup-01-field-error.png') });

    // The new token pasted: saved, tested again by itself, connected.
    await form.getByTestId('setting-phone_number_id').fill(settings.phone_number_id);
    await form.getByTestId('setting-access_token').fill(settings.access_token);
    await form.getByTestId('inbox-save').click();
    await card.getByTestId('setup-result').filter({ hasText: 'Connected: Sandbox 84280000101' }).waitFor();
    await ui.screenshot({ path: path.join(shots, 'setup-02-connected.png') });

    // Whoever created it is a member (so its customers reach them).
    const inbox = (await call('GET', '/api/v1/inboxes', admin)).items.find((i) => i.name === 'WhatsApp cửa hàng');
    const members = await call('GET', `/api/v1/inboxes/${inbox.id}/members`, admin);
    assert.ok(members.agent_ids.includes((await call('GET', '/api/v1/me', admin)).id));
  } finally {
    proc.kill('SIGTERM');
  }
});

test('business hours that end before they start are refused beside that day, in Vietnamese', async () => {
  const ui = await agentPage('admin@shop.vn', 'vi-VN');
  await ui.getByTestId('nav-inboxes').click();
  const routing = ui.getByTestId('routing-form').first();
  if (!(await routing.getByTestId('routing-hours').isChecked())) await routing.getByTestId('routing-hours').check();
  await routing.getByTestId('routing-day-sat').fill('18:00-09:00');
  await routing.getByTestId('routing-save').click();
  const beside = routing.locator('label', { has: ui.getByTestId('routing-day-sat') }).getByTestId('field-error');
  await beside.filter({ hasText: 'Giờ bắt đầu phải trước giờ kết thúc.' }).waitFor();
  assert.equal(await routing.locator('p.error').count(), 0, 'nothing below Save');
  await ui.screenshot({ path: path.join(shots, 'setup-03-hours-error-vi.png') });
});
