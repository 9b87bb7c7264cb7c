// New work is not missed: a sound (mutable, remembered), counts on the tabs and in the title, and
// browser notifications while the tab is hidden, for the kinds each agent chooses.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { admin, agentPage, base, call, DESKTOP, ids, newInbox, notes, PASSWORD, recorder, shots, sounds, useWorld, visitorSays } from './support.mjs';

useWorld();

test('new work: a sound, counts on the tabs and in the title; muting follows the agent to every device', async () => {
  const inbox = await newInbox('Sound shop', [ids.lan]);
  const lan = await agentPage('lan@shop.vn', 'en-US', DESKTOP, recorder);
  assert.equal(await lan.title(), 'Switchboard');

  const first = await visitorSays(inbox, 'Is the red dress in stock?');
  await lan.waitForFunction(() => document.title === '(1) Switchboard');
  assert.equal(await lan.getByTestId('count-unassigned').innerText(), '1');
  await lan.waitForFunction(() => window.__sounds.includes('waiting'));

  // Muted: the next customer is counted but not heard.
  await lan.getByTestId('sound-toggle').click();
  assert.equal(await lan.getByTestId('sound-toggle').getAttribute('aria-pressed'), 'true');
  const second = await visitorSays(inbox, 'Do you deliver on Sunday?');
  await lan.waitForFunction(() => document.title === '(2) Switchboard');
  await lan.getByTestId('count-unassigned').filter({ hasText: '2' }).waitFor();
  assert.deepEqual(await sounds(lan), ['waiting'], 'no sound while muted');

  // The choice is kept with Lan, not in this browser: her other device is muted too, and turning
  // the sound back on there is what this one reads after a reload.
  const other = await agentPage('lan@shop.vn', 'en-US', DESKTOP);
  await other.locator('[data-testid=sound-toggle][aria-pressed=true]').waitFor();
  await other.getByTestId('sound-toggle').click();
  await other.locator('[data-testid=sound-toggle][aria-pressed=false]').waitFor();
  await other.context().close();
  await lan.reload();
  await lan.getByTestId('conversation-list').waitFor();
  await lan.locator('[data-testid=sound-toggle][aria-pressed=false]').waitFor();

  // Lan takes the first customer: one fewer waiting.
  await lan.getByTestId('conversation-row').filter({ hasText: 'red dress' }).click();
  await lan.getByTestId('claim').click();
  await lan.getByTestId('holder').filter({ hasText: 'You are handling' }).waitFor();
  await lan.waitForFunction(() => document.title === '(1) Switchboard');
  assert.equal(await lan.getByTestId('count-unassigned').innerText(), '1');

  // While she looks at the other one, her customer answers: counted on "Mine" and heard.
  await lan.getByTestId('conversation-row').filter({ hasText: 'Sunday' }).click();
  await lan.getByTestId('claim').waitFor();
  await visitorSays(inbox, 'Size M please', first.token);
  await lan.getByTestId('count-mine').filter({ hasText: '1' }).waitFor();
  await lan.waitForFunction(() => document.title === '(2) Switchboard');
  await lan.waitForFunction(() => window.__sounds.includes('answered'));
  await lan.screenshot({ path: path.join(shots, 'notify-1-counts.png') });
  assert.ok(second.conv);
  await lan.context().close();
});

test('browser notifications while the tab is hidden: asked from a click, each kind of new work, and the agent picks which', async () => {
  const inbox = await newInbox('Notify shop', [ids.lan, ids.minh]);
  const lan = await agentPage('lan@shop.vn', 'en-US', DESKTOP, recorder);
  await lan.getByTestId('notification-settings').click();
  await lan.getByTestId('permission').filter({ hasText: 'while this tab is in the background' }).waitFor();
  // The browser answers "allow" to the request the click makes.
  await lan.context().grantPermissions(['notifications'], { origin: base });
  await lan.getByTestId('allow-notifications').click();
  await lan.getByTestId('permission').filter({ hasText: 'Browser notifications are on' }).waitFor();
  await lan.screenshot({ path: path.join(shots, 'notify-2-settings.png') });
  await lan.getByTestId('settings-close').click();
  await lan.evaluate(() => window.__setHidden(true));

  const waitNote = (re) => lan.waitForFunction((src) => window.__notes.some((n) => new RegExp(src).test(n.title)), re.source);

  // A new waiting customer in her inbox.
  const a = await visitorSays(inbox, 'Hello, anyone there?');
  await waitNote(/^New customer waiting: Visitor \w{4}$/);
  // Assigned to her by the admin.
  await call('POST', `/api/v1/conversations/${a.conv}/assign`, await admin(), { agent_id: ids.lan });
  await waitNote(/is now yours$/);
  // Her customer answers.
  await visitorSays(inbox, 'I need two shirts', a.token);
  await waitNote(/answered you$/);
  const answered = (await notes(lan)).find((n) => /answered you$/.test(n.title));
  assert.equal(answered.body, 'I need two shirts');
  // Minh hands his customer over to her.
  const minh = (await call('POST', '/api/v1/auth/login', null, { email: 'minh@shop.vn', password: PASSWORD })).token;
  const b = await visitorSays(inbox, 'Can I pay by card?');
  await call('POST', `/api/v1/conversations/${b.conv}/claim`, minh);
  await call('POST', `/api/v1/conversations/${b.conv}/transfer`, minh, { agent_id: ids.lan, message: 'card payment question' });
  await waitNote(/is now yours \(transferred to you\)$/);

  // She no longer wants to hear about answers: her customer writes, then a new customer comes.
  await lan.getByTestId('notification-settings').click();
  await lan.getByTestId('pref-answered').uncheck();
  await lan.getByTestId('settings-close').click();
  const before = (await notes(lan)).length;
  await visitorSays(inbox, 'Also a belt', a.token);
  await visitorSays(inbox, 'Hi, a new question');
  await waitNote(/^New customer waiting/);
  await lan.waitForFunction((n) => window.__notes.length > n, before);
  const after = (await notes(lan)).slice(before);
  assert.deepEqual(after.map((n) => n.title.replace(/\w{4}$/, '…')), ['New customer waiting: Visitor …'], 'only the new customer notified');
  // Visible again: no browser notifications, the sound still says it.
  await lan.evaluate(() => window.__setHidden(false));
  const shown = (await notes(lan)).length;
  await visitorSays(inbox, 'One more customer');
  await lan.waitForFunction(() => window.__sounds.filter((k) => k === 'waiting').length >= 3);
  assert.equal((await notes(lan)).length, shown, 'no browser notification while the tab is in view');
  await lan.context().close();
});
