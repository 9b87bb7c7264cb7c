// Browser tests of automation: an admin pastes a flow in the editor's JSON tab, fixes what the check
// finds, tries it in the simulator, and a customer's message is answered by the bot; an agent
// takes over from the bot; a scheduled flow is attached in the side panel and its status moves.
// The real binary, Chromium driven by playwright-core; screenshots in test-artifacts/screenshots/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { admin, agentPage, call, ids, shots, useWorld, visitorSays as says } from './support.mjs';

useWorld();

/** A widget visitor writes; returns the conversation id. */
async function visitorSays(text) {
  return (await says(ids.inbox, text)).conv;
}

const SIZE_FLOW = {
  name: 'Hỏi size',
  version: 1,
  triggers: [
    { type: 'keyword', match: 'whole_word', keywords: ['size'] },
    { type: 'scheduled_due' },
  ],
  start: 'ask',
  steps: [
    {
      id: 'ask',
      do: {
        type: 'ask',
        question: { text: 'Anh/chị mặc size nào ạ?' },
        answer: { type: 'choice', choices: [{ title: 'Size S', value: 'S' }, { title: 'Size M', value: 'M' }] },
        save_to: 'size',
        next: 'thanks',
      },
    },
    { id: 'thanks', do: { type: 'send_message', variants: [{ text: 'Dạ size {{contact.size}} còn hàng ạ' }], next: 'missing' } },
  ],
};

test('an admin builds a flow, fixes what the check finds and tries it in the simulator', async () => {
  const page = await agentPage('admin@shop.vn', 'en-US', { viewport: { width: 1400, height: 900 } });
  await page.getByTestId('nav-flows').click();
  await page.getByTestId('flow-new').click();
  // Pasted in the Advanced (JSON) tab (the visual editor has its own tests: flow-editor.test.mjs).
  await page.getByTestId('flow-tab-json').click();
  // A step pointing nowhere: the check names the step and the field.
  await page.getByTestId('flow-json').fill(JSON.stringify(SIZE_FLOW, null, 2));
  await page.getByTestId('flow-check').click();
  const problem = page.getByTestId('flow-step').filter({ hasText: 'thanks' }).getByTestId('flow-problem');
  await problem.filter({ hasText: 'missing' }).waitFor();
  await page.screenshot({ path: path.join(shots, 'flows-01-editor-problem.png') });
  const fixed = { ...SIZE_FLOW, steps: [SIZE_FLOW.steps[0], { id: 'thanks', do: { type: 'send_message', variants: [{ text: 'Dạ size {{contact.size}} còn hàng ạ' }] } }] };
  await page.getByTestId('flow-json').fill(JSON.stringify(fixed, null, 2));
  await page.getByTestId('flow-check').click();
  await page.getByTestId('flow-valid').waitFor();
  await page.getByTestId('flow-save').click();
  await page.locator('h2', { hasText: 'Hỏi size · v1' }).waitFor();

  // The simulator on Messenger: the question goes out with buttons; a tap answers it.
  await page.getByTestId('sim-channel').selectOption('messenger');
  await page.getByTestId('sim-start').click();
  const bot = page.getByTestId('sim-bot');
  await bot.filter({ hasText: 'Anh/chị mặc size nào ạ?' }).filter({ hasText: 'buttons' }).waitFor();
  await bot.getByRole('button', { name: 'Size M' }).click();
  await bot.filter({ hasText: 'Dạ size M còn hàng ạ' }).waitFor();
  // On Zalo the same question is a numbered list.
  await page.getByTestId('sim-channel').selectOption('zalo');
  await page.getByTestId('sim-start').click();
  await bot.filter({ hasText: '1. Size S' }).filter({ hasText: 'numbered list' }).waitFor();
  await page.screenshot({ path: path.join(shots, 'flows-02-simulator.png') });

  // A real customer writes the keyword: the bot asks, the conversation is in the Bot tab.
  const conv = await visitorSays('shop còn size M không?');
  for (let i = 0; i < 100; i++) {
    const c = await call('GET', `/api/v1/conversations/${conv}`, await admin());
    if (c.status === 'bot') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const lan = await agentPage('lan@shop.vn', 'en-US', { viewport: { width: 1400, height: 900 } });
  await lan.getByTestId('tab-bot').click();
  await lan.getByTestId('conversation-row').filter({ hasText: 'size nào' }).click();
  await lan.getByTestId('bot-banner').waitFor();
  await lan.getByTestId('message').filter({ hasText: 'Anh/chị mặc size nào ạ?' }).waitFor();
  await lan.screenshot({ path: path.join(shots, 'flows-03-bot-holds-it.png') });
  // Lan takes over: she holds it, the bot is done.
  await lan.getByTestId('take-over').click();
  await lan.getByTestId('holder').filter({ hasText: 'You are handling' }).waitFor();
  assert.equal(await lan.getByTestId('bot-banner').count(), 0);
  const state = await call('GET', `/api/v1/conversations/${conv}/automation`, await admin());
  assert.equal(state.running, null);
});

test('a scheduled flow is attached in the side panel and its status moves', async () => {
  const conv = await visitorSays('cảm ơn shop');
  const page = await agentPage('admin@shop.vn', 'en-US', { viewport: { width: 1400, height: 900 } });
  await page.getByTestId('tab-all').click();
  await page.getByTestId('conversation-row').filter({ hasText: 'cảm ơn shop' }).click();
  const panel = page.getByTestId('automation-panel');
  await panel.getByTestId('scheduled-flow').selectOption({ label: 'Hỏi size' });
  await panel.getByTestId('scheduled-delay').fill('2');
  // Live chat has no window: the forecast says the bot may write then.
  await panel.getByTestId('scheduled-forecast').filter({ hasText: 'may message' }).waitFor();
  await panel.getByTestId('scheduled-attach').click();
  const item = panel.getByTestId('scheduled-item').filter({ hasText: 'Hỏi size' });
  await item.getByTestId('scheduled-status').filter({ hasText: 'scheduled' }).waitFor();
  await page.screenshot({ path: path.join(shots, 'flows-04-scheduled.png') });
  await item.getByTestId('scheduled-send-now').click();
  await item.getByTestId('scheduled-status').filter({ hasText: 'sent' }).waitFor();
  await page.getByTestId('message').filter({ hasText: 'Anh/chị mặc size nào ạ?' }).waitFor();
  const list = await call('GET', `/api/v1/conversations/${conv}`, await admin());
  assert.equal(list.status, 'bot', 'the scheduled flow holds the conversation while it asks');
  await page.screenshot({ path: path.join(shots, 'flows-05-scheduled-sent.png') });
});
