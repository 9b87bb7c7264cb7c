// Admin pages: agents, inboxes (live chat + widget snippet + members), quick replies, tags.

import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, Agent, Inbox, Role } from './api';
import { errorText, t } from './i18n';
import { refreshAgents, refreshInboxes, refreshQuickReplies, refreshTags, useShared } from './store';

function useError(): [string, (e: unknown) => void, () => void] {
  const [error, setError] = useState('');
  return [
    error,
    (e: unknown) => {
      if (e instanceof ApiError) setError(e.field ? e.message : errorText(e.code, e.message));
    },
    () => setError(''),
  ];
}

const ROLES: Role[] = ['agent', 'supervisor', 'admin'];

export function AgentsPage() {
  const s = useShared();
  const [form, setForm] = useState({ email: '', name: '', role: 'agent' as Role, password: '', capacity: '' });
  const [error, fail, clear] = useError();
  const create = async (e: Event) => {
    e.preventDefault();
    clear();
    try {
      await api('POST', '/agents', { ...form, capacity: form.capacity ? Number(form.capacity) : null });
      setForm({ email: '', name: '', role: 'agent', password: '', capacity: '' });
      await refreshAgents();
    } catch (err) {
      fail(err);
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
                <select value={a.role} onChange={(e) => patch(a, { role: e.currentTarget.value })}>
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
                  value={a.capacity ?? ''}
                  onChange={(e) => patch(a, { capacity: e.currentTarget.value === '' ? null : Number(e.currentTarget.value) })}
                />
              </td>
              <td>
                <input type="checkbox" checked={a.active} onChange={(e) => patch(a, { active: e.currentTarget.checked })} />
              </td>
              <td>{a.online ? '●' : ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <form class="card inline" onSubmit={create}>
        <h3>{t('admin.new_agent')}</h3>
        <input placeholder={t('admin.name')} value={form.name} onInput={(e) => setForm({ ...form, name: e.currentTarget.value })} required />
        <input placeholder={t('admin.email')} type="email" value={form.email} onInput={(e) => setForm({ ...form, email: e.currentTarget.value })} required />
        <input placeholder={t('admin.password')} type="password" value={form.password} onInput={(e) => setForm({ ...form, password: e.currentTarget.value })} required minLength={8} />
        <select value={form.role} onChange={(e) => setForm({ ...form, role: e.currentTarget.value as Role })}>
          {ROLES.map((r) => (
            <option value={r} key={r}>
              {t(`admin.role.${r}`)}
            </option>
          ))}
        </select>
        <input placeholder={t('admin.capacity')} type="number" min={0} class="narrow" value={form.capacity} onInput={(e) => setForm({ ...form, capacity: e.currentTarget.value })} />
        <button class="primary" type="submit">
          {t('admin.create')}
        </button>
        {error && <p class="error">{error}</p>}
      </form>
    </div>
  );
}

export function InboxesPage() {
  const s = useShared();
  const [name, setName] = useState('');
  const [error, fail, clear] = useError();
  const create = async (e: Event) => {
    e.preventDefault();
    clear();
    try {
      await api('POST', '/inboxes', { name, channel: 'livechat' });
      setName('');
      await refreshInboxes();
    } catch (err) {
      fail(err);
    }
  };
  return (
    <div class="admin">
      <h2>{t('nav.inboxes')}</h2>
      {s.inboxes.length === 0 && <p class="empty">{t('admin.none')}</p>}
      {s.inboxes.map((i) => (
        <InboxCard inbox={i} key={i.id} />
      ))}
      <form class="card inline" onSubmit={create}>
        <h3>{t('admin.new_inbox')}</h3>
        <input placeholder={t('admin.name')} value={name} onInput={(e) => setName(e.currentTarget.value)} required />
        <button class="primary" type="submit">
          {t('admin.create')}
        </button>
        {error && <p class="error">{error}</p>}
      </form>
    </div>
  );
}

function InboxCard({ inbox }: { inbox: Inbox }) {
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
    </div>
  );
}

export function QuickRepliesPage() {
  const s = useShared();
  const [form, setForm] = useState({ code: '', text: '' });
  const [editing, setEditing] = useState<string | null>(null);
  const [error, fail, clear] = useError();
  const save = async (e: Event) => {
    e.preventDefault();
    clear();
    try {
      if (editing) await api('PATCH', `/quick-replies/${editing}`, form);
      else await api('POST', '/quick-replies', form);
      setForm({ code: '', text: '' });
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
              <td class="wrap">{q.text}</td>
              <td>
                <button
                  onClick={() => {
                    setEditing(q.id);
                    setForm({ code: q.code, text: q.text });
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
        <input placeholder={t('admin.code')} value={form.code} onInput={(e) => setForm({ ...form, code: e.currentTarget.value })} required />
        <textarea placeholder={t('admin.text')} value={form.text} onInput={(e) => setForm({ ...form, text: e.currentTarget.value })} required rows={2} />
        <button class="primary" type="submit">
          {editing ? t('admin.save') : t('admin.create')}
        </button>
        {error && <p class="error">{error}</p>}
      </form>
    </div>
  );
}

export function TagsPage() {
  const s = useShared();
  const [name, setName] = useState('');
  const [error, fail, clear] = useError();
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
  const remove = async (id: string) => {
    clear();
    try {
      await api('DELETE', `/tags/${id}`);
      await refreshTags();
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
          <span class="chip" key={tg.id}>
            {tg.name}
            <button class="link" onClick={() => remove(tg.id)} aria-label={t('admin.delete')}>
              ×
            </button>
          </span>
        ))}
      </div>
      <form class="card inline" onSubmit={create}>
        <h3>{t('admin.new_tag')}</h3>
        <input placeholder={t('admin.name')} value={name} onInput={(e) => setName(e.currentTarget.value)} required />
        <button class="primary" type="submit">
          {t('admin.create')}
        </button>
        {error && <p class="error">{error}</p>}
      </form>
    </div>
  );
}
