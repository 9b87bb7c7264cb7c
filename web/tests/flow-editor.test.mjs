// Browser tests of the visual flow editor: an admin builds a flow from scratch (a keyword trigger,
// a message with buttons, a question for the phone number, a handoff) without touching JSON, sees
// the editor's and the server's problems beside the step they concern, saves, reloads and finds
// the same steps, then tries it in the simulator; the JSON tab and the editor share one flow, and
// broken JSON keeps you in the JSON tab; on a phone the editor fits the screen and passes axe.
// The real binary, Chromium driven by playwright-core; screenshots in test-artifacts/screenshots/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { admin, agentPage, axeAudit, call, DESKTOP, noSidewaysScroll, PHONE, shots, useWorld } from './support.mjs';

useWorld();

const step = (page, id) => page.locator(`[data-testid="flow-step"][data-step-id="${id}"]`);
const problem = (scope, text) => scope.getByTestId('flow-problem').filter({ hasText: text });

/** Renames the step at `index` (the input commits on Enter). */
async function rename(page, index, id) {
  const input = page.getByTestId('flow-step').nth(index).getByTestId('step-id');
  await input.fill(id);
  await input.press('Enter');
  await step(page, id).waitFor();
}

/** No problem shown in `scope` (the server's check may take a moment). */
async function noProblems(scope) {
  for (let i = 0; ; i++) {
    const n = await scope.getByTestId('flow-problem').count();
    if (n === 0) return;
    if (i > 100) assert.fail(`still ${n} problem(s): ${await scope.getByTestId('flow-problem').allTextContents()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function addStep(page, kind) {
  await page.getByTestId('step-new-kind').selectOption(kind);
  await page.getByTestId('step-add').click();
}

test('an admin builds a flow in the visual editor, saves it, reloads it and tries it in the simulator', async () => {
  const page = await agentPage('admin@shop.vn', 'en-US', { ...DESKTOP, bypassCSP: true });
  await page.getByTestId('nav-flows').click();
  await page.getByTestId('flow-new').click();
  await page.getByTestId('flow-visual').waitFor();
  // From scratch: the editor says at once what is missing.
  await problem(page, 'Give the flow a name').waitFor();
  await problem(page, 'Add at least one trigger').waitFor();
  await page.getByTestId('flow-name').fill('Tư vấn áo');

  // Starts when the customer writes a keyword.
  await page.getByTestId('trigger-new-kind').selectOption('keyword');
  await page.getByTestId('trigger-add').click();
  const trigger = page.getByTestId('flow-trigger').first();
  await problem(trigger, 'Write at least one keyword').waitFor();
  await trigger.getByTestId('trigger-match').selectOption('whole_word');
  await trigger.getByTestId('trigger-keywords').fill('tư vấn\náo thun');
  await noProblems(trigger);

  // 1. A greeting with two buttons; the payloads are made from the titles.
  await addStep(page, 'send_message');
  await rename(page, 0, 'greet');
  const greet = step(page, 'greet');
  await greet.getByTestId('step-is-start').waitFor();
  await problem(greet, 'Write the text').waitFor();
  await greet.getByTestId('variant-text').fill('Chào {{contact.name | anh/chị}}! Shop tư vấn mẫu nào ạ?');
  await greet.getByTestId('button-add').click();
  await greet.getByTestId('button-title').nth(0).fill('Áo thun');
  await greet.getByTestId('button-add').click();
  await greet.getByTestId('button-title').nth(1).fill('Gặp nhân viên');
  assert.equal(await greet.getByTestId('button-payload').nth(1).inputValue(), 'GAP_NHAN_VIEN');
  await noProblems(greet);

  // 2. Ask for the phone number: a new step continues from the last one.
  await addStep(page, 'ask');
  await rename(page, 1, 'ask_phone');
  assert.equal(await greet.getByTestId('step-next').inputValue(), 'ask_phone', 'the greeting leads to the question, renamed with it');
  const ask = step(page, 'ask_phone');
  await ask.getByTestId('ask-question-text').fill('Anh/chị cho shop xin số điện thoại nhé?');
  await ask.getByTestId('ask-type').selectOption('phone');
  await ask.getByTestId('ask-save-to').fill('phone');
  await ask.getByTestId('ask-retry-text').fill('Số điện thoại chưa đúng ạ, ví dụ 0912 345 678.');

  // 3. Hand off to a person.
  await addStep(page, 'handoff');
  await step(page, 'handoff_1').getByTestId('handoff-note').fill('Khách {{contact.phone}} cần tư vấn');
  assert.equal(await ask.getByTestId('step-next').inputValue(), 'handoff_1');
  // The server's check agrees: nothing to fix.
  await page.getByTestId('flow-valid').waitFor();

  // A step nothing leads to: the server's check says so under that step.
  await addStep(page, 'stop');
  await problem(step(page, 'stop_1'), 'cannot be reached').waitFor();
  // Chosen as where an unanswered question goes, it is reached.
  await ask.getByTestId('ask-timeout-next').selectOption('stop_1');
  await noProblems(step(page, 'stop_1'));
  // Deleting a step others lead to flags them.
  await step(page, 'stop_1').getByTestId('step-delete').click();
  await problem(ask, 'Step "stop_1" no longer exists').waitFor();
  await page.screenshot({ path: path.join(shots, 'flow-editor-01-problems.png'), fullPage: true });
  await ask.getByTestId('ask-timeout-next').selectOption('');
  await noProblems(ask);
  // Renaming a step renames what leads to it.
  await rename(page, 2, 'human');
  assert.equal(await ask.getByTestId('step-next').inputValue(), 'human');
  await page.getByTestId('flow-valid').waitFor();
  await page.screenshot({ path: path.join(shots, 'flow-editor-02-built.png'), fullPage: true });
  await step(page, 'greet').screenshot({ path: path.join(shots, 'flow-editor-02b-step.png') });

  await page.getByTestId('flow-save').click();
  await page.locator('h2', { hasText: 'Tư vấn áo · v1' }).waitFor();
  const stored = (await call('GET', '/api/v1/flows', await admin())).items.find((f) => f.name === 'Tư vấn áo');
  assert.deepEqual(stored.flow.triggers, [{ type: 'keyword', match: 'whole_word', keywords: ['tư vấn', 'áo thun'] }]);
  assert.equal(stored.flow.start, 'greet');
  assert.deepEqual(
    stored.flow.steps.map((s) => [s.id, s.do.type, s.do.next ?? null]),
    [
      ['greet', 'send_message', 'ask_phone'],
      ['ask_phone', 'ask', 'human'],
      ['human', 'handoff', null],
    ],
  );
  assert.deepEqual(stored.flow.steps[0].do.variants[0].buttons, [
    { payload: 'AO_THUN', title: 'Áo thun' },
    { payload: 'GAP_NHAN_VIEN', title: 'Gặp nhân viên' },
  ]);
  assert.deepEqual(stored.flow.steps[1].do.answer, { type: 'phone' });
  assert.equal(stored.flow.steps[1].do.save_to, 'phone');

  // Reloaded, the editor shows the same flow.
  await page.reload();
  await page.getByTestId('nav-flows').click();
  await page.getByTestId('flow-row').filter({ hasText: 'Tư vấn áo' }).getByTestId('flow-edit').click();
  await page.getByTestId('flow-visual').waitFor();
  assert.equal(await page.getByTestId('flow-name').inputValue(), 'Tư vấn áo');
  assert.deepEqual(await page.getByTestId('flow-step').evaluateAll((els) => els.map((e) => e.dataset.stepId)), ['greet', 'ask_phone', 'human']);
  assert.equal(await page.getByTestId('trigger-keywords').inputValue(), 'tư vấn\náo thun');
  assert.equal(await step(page, 'greet').getByTestId('button-title').nth(1).inputValue(), 'Gặp nhân viên');
  assert.equal(await step(page, 'ask_phone').getByTestId('ask-type').inputValue(), 'phone');
  assert.equal(await step(page, 'ask_phone').getByTestId('step-next').inputValue(), 'human');

  // Tried in the simulator on Messenger: the buttons go out as buttons, a wrong number is asked
  // again, a right one is saved in E.164 and the customer is handed to a person.
  await page.getByTestId('sim-channel').selectOption('messenger');
  await page.getByTestId('sim-start').click();
  const bot = page.getByTestId('sim-bot');
  const hello = bot.filter({ hasText: 'Chào anh/chị! Shop tư vấn mẫu nào ạ?' });
  await hello.filter({ hasText: 'buttons' }).waitFor();
  await hello.getByRole('button', { name: 'Gặp nhân viên' }).waitFor();
  await bot.filter({ hasText: 'cho shop xin số điện thoại' }).waitFor();
  await page.getByTestId('sim-input').fill('abc');
  await page.getByTestId('sim-send').click();
  await bot.filter({ hasText: 'Số điện thoại chưa đúng ạ' }).waitFor();
  await page.getByTestId('sim-input').fill('0912 345 678');
  await page.getByTestId('sim-send').click();
  await page.getByTestId('sim-fields').filter({ hasText: 'phone: +84912345678' }).waitFor();
  await page.getByTestId('sim-system').filter({ hasText: 'handoff' }).first().waitFor();
  await page.screenshot({ path: path.join(shots, 'flow-editor-03-simulator.png'), fullPage: true });
  await axeAudit(page, 'flow editor');
  await page.context().close();
});

test('every kind of step and trigger made in the editor is what the server accepts', async () => {
  const page = await agentPage('admin@shop.vn', 'en-US', DESKTOP);
  await page.getByTestId('nav-flows').click();
  await page.getByTestId('flow-new').click();
  await page.getByTestId('flow-name').fill('Mọi loại bước');
  for (const kind of ['new_conversation', 'keyword', 'has_phone', 'has_email', 'payload', 'referral', 'outside_business_hours', 'resolved', 'tag_added', 'field_changed', 'agent_start', 'started_by_flow', 'scheduled_due']) {
    await page.getByTestId('trigger-new-kind').selectOption(kind);
    await page.getByTestId('trigger-add').click();
  }
  const trig = (i) => page.getByTestId('flow-trigger').nth(i);
  await trig(1).getByTestId('trigger-keywords').fill('giá');
  await trig(4).getByTestId('trigger-values').fill('GET_STARTED');
  await trig(5).getByTestId('trigger-values').fill('quang-cao');
  await trig(8).getByTestId('trigger-values').fill('vip');
  await trig(9).getByTestId('trigger-values').fill('size');
  await page.getByTestId('guard-max-steps').fill('80');
  await page.getByTestId('guard-retrigger').fill('2');
  await page.getByTestId('guard-once').check();

  // The ones with one way on are chained as they are added; the others are linked below.
  const kinds = ['send_message', 'ask', 'add_tag', 'remove_tag', 'set_field', 'wait', 'http', 'schedule_flow', 'cancel_scheduled_flow', 'branch', 'split', 'faq_bot', 'handoff', 'resolve', 'start_flow', 'stop'];
  for (const kind of kinds) await addStep(page, kind);
  await step(page, 'send_1').getByTestId('variant-text').fill('Chào {{contact.name | bạn}}');
  const ask = step(page, 'ask_1');
  await ask.getByTestId('ask-question-text').fill('Size nào ạ?');
  await ask.getByTestId('ask-type').selectOption('choice');
  await ask.getByTestId('choice-title').nth(0).fill('S');
  await ask.getByTestId('choice-title').nth(1).fill('M');
  await ask.getByTestId('ask-save-to').fill('size');
  // A number the server could not even read is flagged beside its field.
  await ask.getByTestId('ask-retries').fill('300');
  await problem(ask, 'whole number from 0 to 10').waitFor();
  await ask.getByTestId('ask-retries').fill('3');
  await ask.getByTestId('ask-timeout').fill('30');
  await ask.getByTestId('ask-timeout-unit').selectOption({ label: 'minutes' });
  await ask.getByTestId('ask-timeout-next').selectOption('resolve_1');
  await step(page, 'add_tag_1').getByTestId('step-tag').fill('vip');
  await step(page, 'remove_tag_1').getByTestId('step-tag').fill('mới');
  await step(page, 'set_field_1').getByTestId('step-field').fill('source');
  await step(page, 'set_field_1').getByTestId('step-value').fill('bot {{contact.size}}');
  await step(page, 'wait_1').getByTestId('wait-hours').check();
  await step(page, 'http_1').getByTestId('http-url').fill('https://shop.example.vn/api/{{contact.size}}');
  await step(page, 'http_1').getByTestId('http-body').fill('{"size": "{{contact.size}}"}');
  await step(page, 'http_1').getByTestId('http-on-failure').selectOption('handoff_1');
  for (const id of ['schedule_1', 'cancel_scheduled_1', 'start_1']) await step(page, id).getByTestId('step-flow').selectOption({ label: 'Tư vấn áo' });
  const branch = step(page, 'branch_1');
  await branch.getByTestId('cond-field').fill('size');
  await branch.getByTestId('cond-value').fill('M');
  await branch.getByTestId('path-next').selectOption('split_1');
  await branch.getByTestId('branch-otherwise').selectOption('faq_bot_1');
  await step(page, 'split_1').getByTestId('path-next').nth(0).selectOption('start_1');
  await step(page, 'split_1').getByTestId('path-next').nth(1).selectOption('stop_1');
  await step(page, 'faq_bot_1').getByTestId('faq-fallback').fill('Dạ shop chưa rõ ạ');
  await noProblems(page.getByTestId('flow-visual'));
  await page.getByTestId('flow-valid').waitFor();
  await page.getByTestId('flow-save').click();
  await page.locator('h2', { hasText: 'Mọi loại bước · v1' }).waitFor();

  const stored = (await call('GET', '/api/v1/flows', await admin())).items.find((f) => f.name === 'Mọi loại bước').flow;
  assert.deepEqual(stored.steps.map((s) => s.do.type), kinds);
  assert.equal(stored.triggers.length, 13);
  assert.deepEqual(stored.guards, { max_steps: 80, retrigger_after_secs: 7200, once_per_contact: true });
  const byId = Object.fromEntries(stored.steps.map((s) => [s.id, s.do]));
  assert.deepEqual(byId.ask_1.answer.choices, [{ title: 'S', value: 'S' }, { title: 'M', value: 'M' }]);
  assert.equal(byId.ask_1.timeout_secs, 1800);
  assert.equal(byId.ask_1.retries, 3);
  assert.deepEqual(byId.wait_1, { type: 'wait', until_business_hours: true, next: 'http_1' });
  assert.deepEqual(byId.http_1.body, { size: '{{contact.size}}' });
  assert.deepEqual(byId.branch_1.paths, [{ when: { type: 'field', field: 'size', op: 'eq', value: 'M' }, next: 'split_1' }]);
  await page.context().close();
});

test('the JSON tab and the editor share one flow; broken JSON keeps you in the JSON tab', async () => {
  const page = await agentPage('admin@shop.vn', 'en-US', DESKTOP);
  await page.getByTestId('nav-flows').click();
  await page.getByTestId('flow-new').click();
  await page.getByTestId('flow-example').click();
  await page.getByTestId('flow-name').fill('Mẫu');
  // Moving a step changes the order, not the start.
  const order = () => page.getByTestId('flow-step').evaluateAll((els) => els.map((e) => e.dataset.stepId));
  await step(page, 'greet').getByTestId('step-down').click();
  assert.deepEqual(await order(), ['faq', 'greet']);
  await step(page, 'greet').getByTestId('step-is-start').waitFor();
  await step(page, 'greet').getByTestId('step-up').click();
  assert.deepEqual(await order(), ['greet', 'faq']);
  // Another kind for a step: asked first, its fields start afresh.
  page.once('dialog', (d) => d.accept());
  await step(page, 'faq').getByTestId('step-kind').selectOption('handoff');
  await step(page, 'faq').getByTestId('handoff-note').fill('Khách cần người thật');
  await page.getByTestId('flow-tab-json').click();
  const json = JSON.parse(await page.getByTestId('flow-json').inputValue());
  assert.equal(json.name, 'Mẫu');
  assert.deepEqual(json.steps.map((s) => s.id), ['greet', 'faq']);
  assert.deepEqual(json.steps[1].do, { type: 'handoff', note: 'Khách cần người thật' });

  await page.getByTestId('flow-json').fill('{ "name": "Mẫu", ');
  await page.getByTestId('flow-tab-visual').click();
  await page.getByTestId('flow-tab-error').filter({ hasText: 'Fix the JSON' }).waitFor();
  assert.equal(await page.getByTestId('flow-json').count(), 1, 'still in the JSON tab');
  await page.getByTestId('flow-json').fill(JSON.stringify({ ...json, steps: 'none' }));
  await page.getByTestId('flow-tab-visual').click();
  await page.getByTestId('flow-tab-error').filter({ hasText: '"steps" must be a list' }).waitFor();

  json.name = 'Mẫu đã sửa';
  json.triggers.push({ type: 'keyword', match: 'contains', keywords: ['giá'] });
  await page.getByTestId('flow-json').fill(JSON.stringify(json, null, 2));
  await page.getByTestId('flow-tab-visual').click();
  await page.getByTestId('flow-visual').waitFor();
  assert.equal(await page.getByTestId('flow-tab-error').count(), 0);
  assert.equal(await page.getByTestId('flow-name').inputValue(), 'Mẫu đã sửa');
  assert.equal(await page.getByTestId('flow-trigger').nth(1).getByTestId('trigger-keywords').inputValue(), 'giá');
  await page.getByTestId('flow-valid').waitFor();
  // Leaving with unsaved changes asks first.
  let asked = '';
  page.once('dialog', (d) => ((asked = d.message()), d.dismiss()));
  await page.getByTestId('flow-back').click();
  assert.match(asked, /without saving/);
  assert.equal(await page.getByTestId('flow-editor').count(), 1, 'still editing');
  page.once('dialog', (d) => d.accept());
  await page.getByTestId('flow-back').click();
  await page.getByTestId('flows-page').waitFor();
  await page.context().close();
});

const PHONE_FLOW = {
  name: 'Xin số điện thoại',
  version: 1,
  triggers: [{ type: 'keyword', match: 'contains', keywords: ['sđt'] }],
  start: 'greet',
  steps: [
    { id: 'greet', do: { type: 'send_message', variants: [{ text: 'Chào anh/chị', buttons: [{ payload: 'GAP_NV', title: 'Gặp nhân viên' }] }], next: 'ask_phone' } },
    { id: 'ask_phone', do: { type: 'ask', question: { text: 'Số điện thoại của anh/chị?' }, answer: { type: 'phone' }, save_to: 'phone', timeout_secs: 3600, next: 'human' } },
    { id: 'human', do: { type: 'handoff' } },
  ],
};

test('on a phone the flow editor fits the screen, in Vietnamese, with no accessibility problem', async () => {
  await call('POST', '/api/v1/flows', await admin(), { active: false, flow: PHONE_FLOW });
  const page = await agentPage('admin@shop.vn', 'vi-VN', { ...PHONE, bypassCSP: true });
  await page.getByTestId('menu').tap();
  await page.getByTestId('nav-flows').click();
  await page.getByTestId('flow-row').filter({ hasText: PHONE_FLOW.name }).getByTestId('flow-edit').click();
  await page.getByTestId('flow-visual').waitFor();
  await step(page, 'ask_phone').getByTestId('ask-type').waitFor();
  await page.getByTestId('flow-valid').filter({ hasText: 'Không có lỗi' }).waitFor();
  await page.getByRole('tab', { name: 'Soạn thảo' }).waitFor();
  await noSidewaysScroll(page, 'the flow editor on a phone');
  await page.screenshot({ path: path.join(shots, 'flow-editor-04-phone.png'), fullPage: true });
  await axeAudit(page, 'flow editor on a phone');
  // A problem in Vietnamese, beside its field.
  await step(page, 'greet').getByTestId('variant-text').fill('');
  await problem(step(page, 'greet'), 'Hãy nhập nội dung').waitFor();
  await noSidewaysScroll(page, 'the flow editor on a phone, with a problem');
  await step(page, 'greet').screenshot({ path: path.join(shots, 'flow-editor-05-phone-step.png') });
  await axeAudit(page, 'flow editor on a phone, with a problem');
  // The server's check, in Vietnamese too.
  await step(page, 'greet').getByTestId('variant-text').fill('Chào {{ten}}');
  await problem(step(page, 'greet'), '{{ten}} không phải là biến').waitFor();
  await page.context().close();
});
