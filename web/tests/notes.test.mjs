// Notes and messages to colleagues are never locked by the customer's channel: an agent who does
// not hold the conversation (or whose customer cannot be messaged now) still writes them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { agentPage, call, ids, shots, useWorld, visitorSays } from './support.mjs';

useWorld();

test('a colleague who does not hold the conversation may not reply, but writes a note', async () => {
  const { conv } = await visitorSays(ids.inbox, 'cho mình hỏi đơn hàng #4411');
  const lan = await agentPage('lan@shop.vn');
  const lanToken = (await call('POST', '/api/v1/auth/login', null, { email: 'lan@shop.vn', password: 'correct horse battery' })).token;
  await call('POST', `/api/v1/conversations/${conv}/claim`, lanToken);
  const minh = await agentPage('minh@shop.vn');
  await minh.getByTestId('tab-all').click();
  await minh.getByTestId('conversation-row').filter({ hasText: '#4411' }).click();
  await minh.getByTestId('holder').filter({ hasText: 'Claimed by Lan' }).waitFor();
  const input = minh.getByTestId('composer-input');
  assert.equal(await input.isDisabled(), true, 'no reply to Lan’s customer');
  assert.equal(await minh.getByTestId('mode-reply').isDisabled(), true);
  await minh.getByTestId('mode-note').click();
  assert.equal(await input.isDisabled(), false, 'a note is always possible');
  await input.fill('Khách này đã hỏi đơn #4411 hôm qua');
  await input.press('Enter');
  await minh.locator('[data-testid=message][data-kind=note]', { hasText: '#4411 hôm qua' }).waitFor();
  // Lan sees it in her thread.
  await lan.getByTestId('tab-mine').click();
  await lan.getByTestId('conversation-row').filter({ hasText: '#4411' }).first().click();
  await lan.locator('[data-testid=message][data-kind=note]', { hasText: '#4411 hôm qua' }).waitFor();
  await minh.screenshot({ path: path.join(shots, 'notes-01-colleague-note.png') });
});
