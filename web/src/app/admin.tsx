// Admin pages: agents, inboxes (live chat + widget snippet + members), quick replies, tags.

import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, Agent, Conversation, Inbox, LibraryItem, Page, Role, RoutingRules, Tag } from './api';
import { LibraryPicker, loadLibrary } from './library';
import { Confirm } from './confirm';
import { showToast } from './toast';
import { errorText, fieldErrorText, fieldLabel, t } from './i18n';
import { FieldError, FormErrors, useFormErrors } from './form';
import { refreshAgents, refreshInboxes, refreshQuickReplies, refreshTags, useShared } from './store';

function useError(): [string, (e: unknown) => void, () => void] {
  const [error, setError] = useState('');
  return [
    error,
    (e: unknown) => {
      if (e instanceof ApiError) setError(e.field ? `${fieldLabel(e.field)}: ${fieldErrorText(e)}` : errorText(e.code, e.message));
    },
    () => setError(''),
  ];
}

const ROLES: Role[] = ['agent', 'supervisor', 'admin'];

export function AgentsPage() {
  const s = useShared();
  const [form, setForm] = useState({ email: '', name: '', role: 'agent' as Role, password: '', capacity: '' });
  const [error, fail, clear] = useError();
  const errs = useFormErrors(['name', 'email', 'password', 'role', 'capacity']);
  const create = async (e: Event) => {
    e.preventDefault();
    errs.clear();
    try {
      await api('POST', '/agents', { ...form, capacity: form.capacity ? Number(form.capacity) : null });
      setForm({ email: '', name: '', role: 'agent', password: '', capacity: '' });
      await refreshAgents();
    } catch (err) {
      errs.fail(err);
    }
  };
  const patch = async (a: Agent, body: Record<string, unknown>) => {
    clear();
    try {
      await api('PATCH', `/agents/${a.id}`, body);
      await refreshAgents();
    } catch (err) {
      fail(err);
    }
  };
  return (
    <div class="admin">
      <h2>{t('nav.agents')}</h2>
      <table>
        <thead>
          <tr>
            <th>{t('admin.name')}</th>
            <th>{t('admin.email')}</th>
            <th>{t('admin.role')}</th>
            <th>{t('admin.capacity')}</th>
            <th>{t('admin.active')}</th>
            <th>{t('admin.online')}</th>
          </tr>
        </thead>
        <tbody>
          {s.agents.map((a) => (
            <tr key={a.id}>
              <td>{a.name}</td>
              <td>{a.email}</td>
              <td>
                <select aria-label={`${t('admin.role')}: ${a.name}`} value={a.role} onChange={(e) => patch(a, { role: e.currentTarget.value })}>
                  {ROLES.map((r) => (
                    <option value={r} key={r}>
                      {t(`admin.role.${r}`)}
                    </option>
                  ))}
                </select>
              </td>
              <td>
                <input
                  type="number"
                  min={0}
                  class="narrow"
                  aria-label={`${t('admin.capacity')}: ${a.name}`}
                  value={a.capacity ?? ''}
                  onChange={(e) => patch(a, { capacity: e.currentTarget.value === '' ? null : Number(e.currentTarget.value) })}
                />
              </td>
              <td>
                <input type="checkbox" aria-label={`${t('admin.active')}: ${a.name}`} checked={a.active} onChange={(e) => patch(a, { active: e.currentTarget.checked })} />
              </td>
              <td>{a.online ? '●' : ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <form class="card inline" onSubmit={create}>
        <h3>{t('admin.new_agent')}</h3>
        <span class="field">
          <input aria-label={t('admin.name')} placeholder={t('admin.name')} value={form.name} onInput={(e) => setForm({ ...form, name: e.currentTarget.value })} required aria-invalid={!!errs.of('name')} />
          <FieldError text={errs.of('name')} />
        </span>
        <span class="field">
          <input aria-label={t('admin.email')} placeholder={t('admin.email')} type="email" value={form.email} onInput={(e) => setForm({ ...form, email: e.currentTarget.value })} required aria-invalid={!!errs.of('email')} />
          <FieldError text={errs.of('email')} />
        </span>
        <span class="field">
          <input aria-label={t('admin.password')} placeholder={t('admin.password')} type="password" value={form.password} onInput={(e) => setForm({ ...form, password: e.currentTarget.value })} required minLength={8} aria-invalid={!!errs.of('password')} />
          <FieldError text={errs.of('password')} />
        </span>
        <select aria-label={t('admin.role')} value={form.role} onChange={(e) => setForm({ ...form, role: e.currentTarget.value as Role })}>
          {ROLES.map((r) => (
            <option value={r} key={r}>
              {t(`admin.role.${r}`)}
            </option>
          ))}
        </select>
        <span class="field">
          <input aria-label={t('admin.capacity')} placeholder={t('admin.capacity')} type="number" min={0} class="narrow" value={form.capacity} onInput={(e) => setForm({ ...form, capacity: e.currentTarget.value })} aria-invalid={!!errs.of('capacity')} />
          <FieldError text={errs.of('capacity') || errs.of('role')} />
        </span>
        <button class="primary" type="submit">
          {t('admin.create')}
        </button>
        {errs.general && <p class="error">{errs.general}</p>}
      </form>
      {error && <p class="error">{error}</p>}
    </div>
  );
}

/** What each channel needs to connect (the providers' own names for them). */
const CHANNEL_FIELDS: Record<string, string[]> = {
  livechat: [],
  messenger: ['page_id', 'page_access_token', 'app_secret', 'verify_token'],
  instagram: ['ig_account_id', 'page_access_token', 'app_secret', 'verify_token'],
  whatsapp: ['phone_number_id', 'waba_id', 'access_token', 'app_secret', 'verify_token'],
  zalo: ['oa_id', 'app_id', 'app_secret', 'oa_secret_key', 'access_token', 'refresh_token'],
  telegram: ['bot_token'],
  shopee: ['shop_id', 'partner_id', 'partner_key', 'access_token'],
};
const SECRET_FIELDS = ['page_access_token', 'app_secret', 'verify_token', 'access_token', 'oa_secret_key', 'refresh_token', 'bot_token', 'partner_key'];
/** Generated by the server when left empty. */
const OPTIONAL_FIELDS = ['verify_token'];

export function InboxesPage() {
  const s = useShared();
  const [name, setName] = useState('');
  const [channel, setChannel] = useState('livechat');
  const [settings, setSettings] = useState<Record<string, string>>({});
  const [created, setCreated] = useState<string | null>(null);
  const errs = useFormErrors(['name', 'channel', 'settings', ...CHANNEL_FIELDS[channel]]);
  const create = async (e: Event) => {
    e.preventDefault();
    errs.clear();
    try {
      const given = Object.fromEntries(Object.entries(settings).filter(([k, v]) => v.trim() && CHANNEL_FIELDS[channel].includes(k)));
      const inbox = await api<Inbox>('POST', '/inboxes', { name, channel, ...(channel === 'livechat' ? {} : { settings: given }) });
      setName('');
      setSettings({});
      setCreated(inbox.id);
      await refreshInboxes();
    } catch (err) {
      errs.fail(err);
    }
  };
  return (
    <div class="admin">
      <h2>{t('nav.inboxes')}</h2>
      {s.inboxes.length === 0 && <p class="empty">{t('admin.none')}</p>}
      {s.inboxes.map((i) => (
        <InboxCard inbox={i} key={i.id} justCreated={i.id === created} />
      ))}
      <form class="card inline" onSubmit={create} data-testid="new-inbox">
        <h3>{t('admin.new_inbox')}</h3>
        <span class="field">
          <input aria-label={t('admin.name')} placeholder={t('admin.name')} value={name} onInput={(e) => setName(e.currentTarget.value)} required aria-invalid={!!errs.of('name')} />
          <FieldError text={errs.of('name')} />
        </span>
        <select aria-label={t('admin.channel')} value={channel} onChange={(e) => setChannel(e.currentTarget.value)} data-testid="new-inbox-channel">
          {Object.keys(CHANNEL_FIELDS).map((c) => (
            <option value={c} key={c}>
              {t(`channel.${c}` as 'channel.livechat')}
            </option>
          ))}
        </select>
        <SettingsFields channel={channel} values={settings} onChange={setSettings} errs={errs} />
        <button class="primary" type="submit">
          {t('admin.create')}
        </button>
        {errs.general && <p class="error">{errs.general}</p>}
      </form>
    </div>
  );
}

/** A channel's settings inputs; `existing`: editing an inbox (secrets left empty are kept). */
function SettingsFields(props: { channel: string; values: Record<string, string>; onChange: (v: Record<string, string>) => void; errs: FormErrors; existing?: boolean }) {
  const { channel, values, onChange, errs, existing } = props;
  return (
    <>
      {CHANNEL_FIELDS[channel].map((k) => {
        const secret = SECRET_FIELDS.includes(k);
        const label = t(`field.${k}` as 'field.page_id');
        const common = {
          'aria-label': label,
          placeholder: existing && secret ? `${label} (${t('setup.keep_secret')})` : label,
          autocomplete: 'off',
          value: values[k] ?? '',
          onInput: (e: Event) => onChange({ ...values, [k]: (e.currentTarget as HTMLInputElement).value }),
          required: !existing && !OPTIONAL_FIELDS.includes(k),
          'aria-invalid': !!errs.of(k),
          'data-testid': `setting-${k}`,
        };
        return (
          <span class="field" key={k}>
            {secret ? <input type="password" {...common} /> : <input {...common} />}
            <FieldError text={errs.of(k)} />
          </span>
        );
      })}
    </>
  );
}

interface Check {
  ok: boolean;
  account_name: string | null;
  reason: string | null;
}

/** The provider's side of an inbox: what to paste there, and the connection test. */
function Setup({ inbox, autoCheck, saves }: { inbox: Inbox; autoCheck: boolean; saves: number }) {
  const [check, setCheck] = useState<Check | null>(null);
  const [testing, setTesting] = useState(false);
  const [copied, setCopied] = useState('');
  const [error, fail, clear] = useError();
  const run = async () => {
    clear();
    setTesting(true);
    try {
      setCheck(await api<Check>('POST', `/inboxes/${inbox.id}/check`));
    } catch (err) {
      fail(err);
    } finally {
      setTesting(false);
    }
  };
  // Right after the inbox is created, and again after each save of its settings.
  useEffect(() => {
    if (autoCheck || saves > 0) void run();
  }, [autoCheck, saves]);
  const setup = inbox.setup;
  if (!setup) return null;
  const copy = (what: string, v: string) => {
    navigator.clipboard?.writeText(v);
    setCopied(what);
  };
  return (
    <div class="setup" data-testid="inbox-setup">
      <h4>{t('setup.title')}</h4>
      <p class="hint">{setup.automatic ? t('setup.automatic') : t('setup.paste')}</p>
      <div class="snippet">
        <label>{t('setup.webhook_url')}</label>
        <code data-testid="setup-webhook-url">{setup.webhook_url}</code>
        {!setup.automatic && <button onClick={() => copy('url', setup.webhook_url)}>{copied === 'url' ? t('admin.copied') : t('admin.copy')}</button>}
      </div>
      {setup.verify_token && (
        <div class="snippet">
          <label>{t('setup.verify_token')}</label>
          <code data-testid="setup-verify-token">{setup.verify_token}</code>
          <button onClick={() => copy('token', setup.verify_token ?? '')}>{copied === 'token' ? t('admin.copied') : t('admin.copy')}</button>
        </div>
      )}
      <p class="hint">
        {t('setup.events')}: <code>{setup.events.join(', ')}</code>
      </p>
      <div class="row wrap">
        <button onClick={run} disabled={testing} data-testid="setup-test">
          {testing ? t('setup.testing') : t('setup.test')}
        </button>
        {check && (
          <span role="status" class={check.ok ? 'ok' : 'error'} data-testid="setup-result">
            {check.ok
              ? check.account_name
                ? t('setup.ok', { name: check.account_name })
                : t('setup.ok_unnamed')
              : t('setup.failed', { reason: setupReason(check.reason) })}
          </span>
        )}
      </div>
      {error && <p class="error">{error}</p>}
    </div>
  );
}

function setupReason(reason: string | null): string {
  const key = `setup.reason.${reason ?? 'provider_error'}`;
  return t((key in SETUP_REASONS ? key : 'setup.reason.provider_error') as 'setup.reason.provider_error');
}
const SETUP_REASONS = Object.fromEntries(
  ['credentials_refused', 'account_mismatch', 'credentials_missing', 'provider_unreachable', 'provider_error', 'not_supported'].map((r) => [`setup.reason.${r}`, true]),
);

/** Editing an inbox: its name and settings (tokens rotated by pasting new ones). */
function EditInbox({ inbox, onSaved }: { inbox: Inbox; onSaved: () => void }) {
  const shown = () => {
    const v: Record<string, string> = {};
    for (const k of CHANNEL_FIELDS[inbox.channel] ?? []) {
      const x = inbox.settings[k];
      if (!SECRET_FIELDS.includes(k) && typeof x === 'string') v[k] = x;
    }
    return v;
  };
  const [name, setName] = useState(inbox.name);
  const [values, setValues] = useState<Record<string, string>>(shown);
  const [saved, setSaved] = useState(false);
  const errs = useFormErrors(['name', ...(CHANNEL_FIELDS[inbox.channel] ?? [])]);
  useEffect(() => {
    setValues(shown());
    setName(inbox.name);
  }, [inbox.id]);
  const save = async (e: Event) => {
    e.preventDefault();
    errs.clear();
    setSaved(false);
    const changed = Object.fromEntries(Object.entries(values).filter(([k, v]) => v.trim() && v !== inbox.settings[k]));
    try {
      await api('PATCH', `/inboxes/${inbox.id}`, { name, ...(Object.keys(changed).length ? { settings: changed } : {}) });
      setSaved(true);
      // Secrets are never shown back: the inputs empty again (empty = keep).
      setValues((v) => Object.fromEntries(Object.entries(v).filter(([k]) => !SECRET_FIELDS.includes(k))));
      await refreshInboxes();
      onSaved();
    } catch (err) {
      errs.fail(err);
    }
  };
  if (inbox.channel === 'livechat') return null;
  return (
    <details class="edit-inbox">
      <summary data-testid="inbox-edit">{t('setup.edit')}</summary>
      <form class="inline" onSubmit={save} data-testid="inbox-edit-form">
        <span class="field">
          <input aria-label={t('admin.name')} value={name} onInput={(e) => setName(e.currentTarget.value)} required aria-invalid={!!errs.of('name')} />
          <FieldError text={errs.of('name')} />
        </span>
        <SettingsFields channel={inbox.channel} values={values} onChange={setValues} errs={errs} existing />
        <button class="primary" type="submit" data-testid="inbox-save">
          {t('admin.save')}
        </button>
        {saved && <span class="ok">{t('setup.saved')}</span>}
        {errs.general && <p class="error">{errs.general}</p>}
      </form>
    </details>
  );
}

function InboxCard({ inbox, justCreated }: { inbox: Inbox; justCreated: boolean }) {
  const [saves, setSaves] = useState(0);
  const s = useShared();
  const [members, setMembers] = useState<string[]>([]);
  const [copied, setCopied] = useState(false);
  const [error, fail, clear] = useError();
  useEffect(() => {
    api<{ agent_ids: string[] }>('GET', `/inboxes/${inbox.id}/members`).then((m) => setMembers(m.agent_ids));
  }, [inbox.id]);
  const toggle = async (id: string, on: boolean) => {
    clear();
    const next = on ? [...members, id] : members.filter((m) => m !== id);
    try {
      const r = await api<{ agent_ids: string[] }>('PUT', `/inboxes/${inbox.id}/members`, { agent_ids: next });
      setMembers(r.agent_ids);
    } catch (err) {
      fail(err);
    }
  };
  return (
    <div class="card">
      <h3>
        {inbox.name} <small>({inbox.channel})</small>
      </h3>
      {inbox.widget_snippet && (
        <div class="snippet">
          <label>{t('admin.snippet')}</label>
          <code data-testid="widget-snippet">{inbox.widget_snippet}</code>
          <button
            onClick={() => {
              navigator.clipboard?.writeText(inbox.widget_snippet ?? '');
              setCopied(true);
            }}
          >
            {copied ? t('admin.copied') : t('admin.copy')}
          </button>
          <a href={`/widget-preview?inbox=${inbox.id}`} target="_blank" rel="noopener">
            {t('admin.preview')}
          </a>
        </div>
      )}
      <Setup inbox={inbox} autoCheck={justCreated} saves={saves} />
      <EditInbox inbox={inbox} onSaved={() => setSaves((n) => n + 1)} />
      <h4>{t('admin.members')}</h4>
      <div class="members">
        {s.agents.map((a) => (
          <label key={a.id} class="check">
            <input type="checkbox" checked={members.includes(a.id)} onChange={(e) => toggle(a.id, e.currentTarget.checked)} />
            {a.name}
          </label>
        ))}
      </div>
      {error && <p class="error">{error}</p>}
      <RoutingEditor inbox={inbox} members={members} />
    </div>
  );
}

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;

/** Minutes as text for an input ('' = off), and back. */
const minutesText = (n: number | null | undefined) => (n == null ? '' : String(n));
const minutesValue = (s: string) => (s.trim() === '' ? null : Number(s));

function RoutingEditor({ inbox, members }: { inbox: Inbox; members: string[] }) {
  const s = useShared();
  const [rules, setRules] = useState<RoutingRules | null>(null);
  const [days, setDays] = useState<Record<string, string>>({});
  const [holidays, setHolidays] = useState('');
  const [saved, setSaved] = useState(false);
  const errs = useFormErrors(['strategy', 'agent_ids', 'default_capacity', 'reply_sla_minutes', 'auto_close', 'offline_release_minutes', 'business_hours']);
  const { clear, fail } = errs;
  useEffect(() => {
    api<RoutingRules>('GET', `/inboxes/${inbox.id}/routing`).then((r) => {
      setRules(r);
      const d: Record<string, string> = {};
      for (const day of DAYS) d[day] = (r.business_hours?.days[day] ?? []).map((x) => `${x.start}-${x.end}`).join(', ');
      setDays(d);
      setHolidays((r.business_hours?.holidays ?? []).join(', '));
    });
  }, [inbox.id]);
  if (!rules) return null;
  const set = (patch: Partial<RoutingRules>) => {
    setSaved(false);
    setRules({ ...rules, ...patch });
  };
  const autoClose = rules.auto_close ?? { customer_silence_minutes: null, agent_silence_minutes: null, closing_message: null };
  const hours = rules.business_hours ?? { utc_offset_minutes: 420, days: {}, holidays: [], pause_routing: true, auto_reply: null };
  const save = async (e: Event) => {
    e.preventDefault();
    clear();
    const body: RoutingRules = { ...rules };
    if (rules.business_hours) {
      const parsed: Record<string, { start: string; end: string }[]> = {};
      for (const day of DAYS) {
        const ranges = (days[day] ?? '')
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean)
          .map((x) => {
            const [start, end] = x.split('-').map((y) => y.trim());
            return { start: start ?? '', end: end ?? '' };
          });
        if (ranges.length) parsed[day] = ranges;
      }
      body.business_hours = { ...hours, days: parsed, holidays: holidays.split(',').map((x) => x.trim()).filter(Boolean) };
    }
    const ac = body.auto_close;
    if (ac && ac.customer_silence_minutes == null && ac.agent_silence_minutes == null) body.auto_close = null;
    try {
      const stored = await api<RoutingRules>('PUT', `/inboxes/${inbox.id}/routing`, body);
      setRules(stored);
      setSaved(true);
    } catch (err) {
      fail(err);
    }
  };
  const memberAgents = s.agents.filter((a) => members.includes(a.id));
  return (
    <form class="routing" onSubmit={save} data-testid="routing-form">
      <h4>{t('routing.title')}</h4>
      <label>
        {t('routing.strategy')}
        <select value={rules.strategy} onChange={(e) => set({ strategy: e.currentTarget.value as RoutingRules['strategy'] })} data-testid="routing-strategy">
          <option value="self_claim">{t('routing.self_claim')}</option>
          <option value="round_robin">{t('routing.round_robin')}</option>
          <option value="least_busy">{t('routing.least_busy')}</option>
        </select>
        <FieldError text={errs.of('strategy')} />
      </label>
      <label class="check">
        <input type="checkbox" checked={rules.include_offline} onChange={(e) => set({ include_offline: e.currentTarget.checked })} />
        {t('routing.include_offline')}
      </label>
      <label class="check">
        <input type="checkbox" checked={rules.sticky} onChange={(e) => set({ sticky: e.currentTarget.checked })} />
        {t('routing.sticky')}
      </label>
      <div>
        <span class="label">{t('routing.agents')}</span>
        <div class="members">
          {memberAgents.map((a) => (
            <label key={a.id} class="check">
              <input
                type="checkbox"
                checked={rules.agent_ids.includes(a.id)}
                onChange={(e) => set({ agent_ids: e.currentTarget.checked ? [...rules.agent_ids, a.id] : rules.agent_ids.filter((x) => x !== a.id) })}
              />
              {a.name}
            </label>
          ))}
        </div>
        <FieldError text={errs.of('agent_ids')} />
      </div>
      <div class="grid2">
        <label>
          {t('routing.default_capacity')}
          <input type="number" min={1} value={minutesText(rules.default_capacity)} onInput={(e) => set({ default_capacity: minutesValue(e.currentTarget.value) })} aria-invalid={!!errs.of('default_capacity')} />
          <FieldError text={errs.of('default_capacity')} />
        </label>
        <label>
          {t('routing.reply_sla')}
          <input type="number" min={1} value={minutesText(rules.reply_sla_minutes)} onInput={(e) => set({ reply_sla_minutes: minutesValue(e.currentTarget.value) })} data-testid="routing-sla" aria-invalid={!!errs.of('reply_sla_minutes')} />
          <FieldError text={errs.of('reply_sla_minutes')} />
        </label>
        <label>
          {t('routing.customer_silence')}
          <input type="number" min={1} value={minutesText(autoClose.customer_silence_minutes)} onInput={(e) => set({ auto_close: { ...autoClose, customer_silence_minutes: minutesValue(e.currentTarget.value) } })} />
          <FieldError text={errs.of('auto_close.customer_silence_minutes')} />
        </label>
        <label>
          {t('routing.agent_silence')}
          <input type="number" min={1} value={minutesText(autoClose.agent_silence_minutes)} onInput={(e) => set({ auto_close: { ...autoClose, agent_silence_minutes: minutesValue(e.currentTarget.value) } })} />
          <FieldError text={errs.of('auto_close.agent_silence_minutes')} />
        </label>
        <label>
          {t('routing.closing_message')}
          <input value={autoClose.closing_message ?? ''} onInput={(e) => set({ auto_close: { ...autoClose, closing_message: e.currentTarget.value || null } })} />
          <FieldError text={errs.of('auto_close.closing_message')} />
        </label>
        <label>
          {t('routing.offline_release')}
          <input type="number" min={1} value={minutesText(rules.offline_release_minutes)} onInput={(e) => set({ offline_release_minutes: minutesValue(e.currentTarget.value) })} />
          <FieldError text={errs.of('offline_release_minutes')} />
        </label>
      </div>
      <label class="check">
        <input type="checkbox" checked={!!rules.business_hours} onChange={(e) => set({ business_hours: e.currentTarget.checked ? hours : null })} data-testid="routing-hours" />
        {t('routing.hours_on')}
      </label>
      {rules.business_hours && (
        <div class="hours">
          <label>
            {t('routing.utc_offset')}
            <input type="number" step="0.5" value={hours.utc_offset_minutes / 60} onInput={(e) => set({ business_hours: { ...hours, utc_offset_minutes: Math.round(Number(e.currentTarget.value) * 60) } })} />
            <FieldError text={errs.of('business_hours.utc_offset_minutes')} />
          </label>
          {DAYS.map((day) => (
            <label key={day} class="day">
              <span>{t(`day.${day}`)}</span>
              <input aria-label={`${t(`day.${day}`)}: ${t('routing.day_ranges')}`} placeholder={t('routing.day_ranges')} value={days[day] ?? ''} onInput={(e) => setDays({ ...days, [day]: e.currentTarget.value })} aria-invalid={!!errs.of(`business_hours.days.${day}`)} data-testid={`routing-day-${day}`} />
              <FieldError text={errs.of(`business_hours.days.${day}`)} />
            </label>
          ))}
          <label>
            {t('routing.holidays')}
            <input value={holidays} onInput={(e) => setHolidays(e.currentTarget.value)} aria-invalid={!!errs.of('business_hours.holidays')} />
            <FieldError text={errs.of('business_hours.holidays')} />
          </label>
          <label class="check">
            <input type="checkbox" checked={hours.pause_routing} onChange={(e) => set({ business_hours: { ...hours, pause_routing: e.currentTarget.checked } })} />
            {t('routing.pause')}
          </label>
          <label>
            {t('routing.auto_reply')}
            <input value={hours.auto_reply ?? ''} onInput={(e) => set({ business_hours: { ...hours, auto_reply: e.currentTarget.value || null } })} />
            <FieldError text={errs.of('business_hours.auto_reply')} />
          </label>
        </div>
      )}
      <div class="row">
        <button class="primary" type="submit" data-testid="routing-save">
          {t('admin.save')}
        </button>
        {saved && <span class="ok">{t('routing.saved')}</span>}
      </div>
      {errs.general && <p class="error">{errs.general}</p>}
    </form>
  );
}

export function QuickRepliesPage() {
  const s = useShared();
  const [form, setForm] = useState<{ code: string; text: string; media: string[] }>({ code: '', text: '', media: [] });
  const [editing, setEditing] = useState<string | null>(null);
  const [picking, setPicking] = useState(false);
  // The library, to show a quick reply's files by name.
  const [library, setLibrary] = useState<LibraryItem[]>([]);
  useEffect(() => {
    loadLibrary()
      .then(setLibrary)
      .catch(() => undefined);
  }, []);
  const fileName = (id: string) => library.find((m) => m.id === id)?.name ?? '…';
  const errs = useFormErrors(['code', 'text', 'media']);
  const { fail, clear } = errs;
  const save = async (e: Event) => {
    e.preventDefault();
    clear();
    try {
      if (editing) await api('PATCH', `/quick-replies/${editing}`, form);
      else await api('POST', '/quick-replies', form);
      setForm({ code: '', text: '', media: [] });
      setEditing(null);
      await refreshQuickReplies();
    } catch (err) {
      fail(err);
    }
  };
  const remove = async (id: string) => {
    clear();
    try {
      await api('DELETE', `/quick-replies/${id}`);
      await refreshQuickReplies();
    } catch (err) {
      fail(err);
    }
  };
  return (
    <div class="admin">
      <h2>{t('nav.quick_replies')}</h2>
      <table>
        <tbody>
          {s.quickReplies.map((q) => (
            <tr key={q.id}>
              <td>
                <b>/{q.code}</b>
              </td>
              <td class="wrap">
                {q.text}
                {(q.media ?? []).length > 0 && <small class="files"> · {t('library.files_of_reply')}: {(q.media ?? []).map(fileName).join(', ')}</small>}
              </td>
              <td>
                <button
                  onClick={() => {
                    setEditing(q.id);
                    setForm({ code: q.code, text: q.text, media: q.media ?? [] });
                  }}
                >
                  {t('admin.edit')}
                </button>
                <button onClick={() => remove(q.id)}>{t('admin.delete')}</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form class="card inline" onSubmit={save}>
        <h3>{editing ? t('admin.edit') : t('admin.new_quick_reply')}</h3>
        <span class="field">
          <input aria-label={t('admin.code')} placeholder={t('admin.code')} value={form.code} onInput={(e) => setForm({ ...form, code: e.currentTarget.value })} required aria-invalid={!!errs.of('code')} />
          <FieldError text={errs.of('code')} />
        </span>
        <span class="field grow">
          <textarea aria-label={t('admin.text')} placeholder={t('admin.text')} value={form.text} onInput={(e) => setForm({ ...form, text: e.currentTarget.value })} required rows={2} aria-invalid={!!errs.of('text')} />
          <FieldError text={errs.of('text')} />
        </span>
        <span class="field qr-files" style={{ position: 'relative' }}>
          <span>{t('library.files_of_reply')}:</span>
          {form.media.map((id) => (
            <span class="chip" key={id}>
              {fileName(id)}
              <button type="button" class="link" aria-label={t('composer.remove_file', { name: fileName(id) })} onClick={() => setForm({ ...form, media: form.media.filter((x) => x !== id) })}>
                ×
              </button>
            </span>
          ))}
          <button type="button" onClick={() => setPicking(!picking)} data-testid="qr-add-file">
            + {t('composer.library')}
          </button>
          {picking && (
            <LibraryPicker
              onPick={(m) => {
                setLibrary((all) => (all.some((x) => x.id === m.id) ? all : [...all, m]));
                setForm((f) => ({ ...f, media: f.media.includes(m.id) ? f.media : [...f.media, m.id] }));
              }}
              onClose={() => setPicking(false)}
            />
          )}
          <FieldError text={errs.of('media')} />
        </span>
        <button class="primary" type="submit">
          {editing ? t('admin.save') : t('admin.create')}
        </button>
        {errs.general && <p class="error">{errs.general}</p>}
      </form>
    </div>
  );
}

export function TagsPage() {
  const s = useShared();
  const [name, setName] = useState('');
  const errs = useFormErrors(['name']);
  const { fail, clear } = errs;
  const create = async (e: Event) => {
    e.preventDefault();
    clear();
    try {
      await api('POST', '/tags', { name });
      setName('');
      await refreshTags();
    } catch (err) {
      fail(err);
    }
  };
  // Deleting a tag takes it off every conversation: say how many first, and offer an undo that
  // puts it back on the ones this agent can see.
  const [asking, setAsking] = useState<{ tag: Tag; ids: string[]; more: boolean } | null>(null);
  const ask = async (tag: Tag) => {
    clear();
    try {
      const p = await api<Page<Conversation>>('GET', `/conversations?tag=${encodeURIComponent(tag.name)}&limit=100`);
      setAsking({ tag, ids: p.items.map((c) => c.id), more: !!p.next_cursor });
    } catch (err) {
      fail(err);
    }
  };
  const remove = async ({ tag, ids }: { tag: Tag; ids: string[] }) => {
    setAsking(null);
    try {
      await api('DELETE', `/tags/${tag.id}`);
      await refreshTags();
      showToast(t('admin.tag_deleted', { tag: tag.name }), async () => {
        try {
          await api('POST', '/tags', { name: tag.name });
          for (const id of ids) await api('POST', `/conversations/${id}/tags`, { name: tag.name });
          await refreshTags();
        } catch (err) {
          fail(err);
        }
      });
    } catch (err) {
      fail(err);
    }
  };
  return (
    <div class="admin">
      <h2>{t('nav.tags')}</h2>
      <div class="chips">
        {s.tags.length === 0 && <p class="empty">{t('admin.none')}</p>}
        {s.tags.map((tg) => (
          <span class="chip" key={tg.id} data-testid="tag">
            {tg.name}
            <button class="link" onClick={() => ask(tg)} aria-label={t('admin.delete_tag', { tag: tg.name })} data-testid="tag-delete">
              ×
            </button>
          </span>
        ))}
      </div>
      {asking && (
        <Confirm
          title={t('confirm.tag_title', { tag: asking.tag.name })}
          body={asking.ids.length === 0 ? t('confirm.tag_body_none') : t('confirm.tag_body', { n: asking.more ? `${asking.ids.length}+` : asking.ids.length })}
          confirm={t('confirm.tag_ok')}
          onCancel={() => setAsking(null)}
          onConfirm={() => remove(asking)}
        />
      )}
      <form class="card inline" onSubmit={create}>
        <h3>{t('admin.new_tag')}</h3>
        <span class="field">
          <input aria-label={t('admin.name')} placeholder={t('admin.name')} value={name} onInput={(e) => setName(e.currentTarget.value)} required aria-invalid={!!errs.of('name')} />
          <FieldError text={errs.of('name')} />
        </span>
        <button class="primary" type="submit">
          {t('admin.create')}
        </button>
        {errs.general && <p class="error">{errs.general}</p>}
      </form>
    </div>
  );
}
