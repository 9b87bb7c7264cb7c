// The customer side panel: profile (picture and name from the channel, "sync from channel"; name,
// phone, email, notes editable with the server's validation shown inline), tags, participants, history, files, the customer's other
// conversations.

import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, Attachment, Contact, Conversation, HistoryEntry, Page, query } from './api';
import { errorText, fieldErrorText, formatTime, Key, reasonText, t } from './i18n';
import { becauseText } from './comments';
import { realtime } from './realtime';
import { agentName, refreshTags, useShared } from './store';
import { FileView } from './files';
import { AutomationPanel } from './flows';
import { Avatar } from './icons';

type Tab = 'contact' | 'history' | 'media' | 'conversations';

export function SidePanel(props: {
  conversation: Conversation;
  onChanged: (c: Conversation) => void;
  onFilterContact: (contactId: string) => void;
  onOpen: (id: string) => void;
  onBack: () => void;
}) {
  const [tab, setTab] = useState<Tab>('contact');
  const c = props.conversation;
  return (
    <aside class="side" data-testid="side-panel" aria-label={t('side.contact')}>
      <div class="side-head mobile-only">
        <button class="icon back" aria-label={t('nav.back_to_chat')} onClick={props.onBack} data-testid="side-back">
          <svg width="22" height="22" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true">
            <path d="M15 18l-6-6 6-6" />
          </svg>
        </button>
        <b>{t('side.contact')}</b>
      </div>
      <div class="tabs small">
        {(['contact', 'history', 'media', 'conversations'] as Tab[]).map((x) => (
          <button key={x} class={tab === x ? 'tab active' : 'tab'} onClick={() => setTab(x)} data-testid={`side-${x}`}>
            {x === 'contact' ? t('side.contact') : x === 'history' ? t('side.history') : x === 'media' ? t('side.media') : t('side.conversations')}
          </button>
        ))}
      </div>
      {tab === 'contact' && (
        <>
          <ContactForm contactId={c.contact_id} onProfileChanged={() => api<Conversation>('GET', `/conversations/${c.id}`).then(props.onChanged).catch(() => {})} />
          <Tags c={c} onChanged={props.onChanged} />
          <People c={c} />
          <AutomationPanel c={c} />
        </>
      )}
      {tab === 'history' && <History c={c} />}
      {tab === 'media' && <Media c={c} />}
      {tab === 'conversations' && <CustomerConversations c={c} onOpen={props.onOpen} onFilter={() => props.onFilterContact(c.contact_id)} />}
    </aside>
  );
}

/** A phone or email found in the customer's messages, different from the profile's: one click fills it in. */
function Suggested({ value, onAccept, testid }: { value?: string; onAccept: (v: string) => void; testid: string }) {
  if (!value) return null;
  return (
    <div class="suggested" data-testid={testid}>
      {t('side.suggested', { value })}{' '}
      <button type="button" class="link" onClick={() => onAccept(value)}>
        {t('side.accept')}
      </button>
    </div>
  );
}

function ContactForm({ contactId, onProfileChanged }: { contactId: string; onProfileChanged: () => void }) {
  const [contact, setContact] = useState<Contact | null>(null);
  const [form, setForm] = useState({ name: '', phone: '', email: '', notes: '' });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [saved, setSaved] = useState(false);
  const [syncing, setSyncing] = useState(false);
  const [synced, setSynced] = useState(false);
  const fill = (k: Contact) => setForm({ name: k.name ?? '', phone: k.phone ?? '', email: k.email ?? '', notes: k.notes ?? '' });
  useEffect(() => {
    api<Contact>('GET', `/contacts/${contactId}`).then((k) => {
      setContact(k);
      fill(k);
    });
  }, [contactId]);
  if (!contact) return null;
  // The name and picture from the channel now (a typed name is replaced: the agent asked).
  const sync = async () => {
    setErrors({});
    setSaved(false);
    setSynced(false);
    setSyncing(true);
    try {
      const k = await api<Contact>('POST', `/contacts/${contactId}/sync-profile`);
      setContact(k);
      fill(k);
      setSynced(true);
      onProfileChanged();
    } catch (err) {
      if (err instanceof ApiError) setErrors({ _: errorText(err.code, err.message) });
    } finally {
      setSyncing(false);
    }
  };
  const save = async (e: Event) => {
    e.preventDefault();
    setErrors({});
    setSaved(false);
    try {
      // The name is sent only when changed: sending it makes it the agent's.
      const { name, ...rest } = form;
      const k = await api<Contact>('PATCH', `/contacts/${contactId}`, name === (contact.name ?? '') ? rest : form);
      setContact(k);
      fill(k);
      setSaved(true);
      if (name !== (contact.name ?? '')) onProfileChanged();
    } catch (err) {
      if (err instanceof ApiError) setErrors({ [err.field ?? '_']: err.field ? fieldErrorText(err) : errorText(err.code, err.message) });
    }
  };
  const field = (name: 'phone' | 'email' | 'notes', label: string, multiline = false) => (
    <label>
      {label}
      {multiline ? (
        <textarea rows={3} value={form[name]} onInput={(e) => setForm({ ...form, [name]: e.currentTarget.value })} data-testid={`contact-${name}`} />
      ) : (
        <input value={form[name]} onInput={(e) => setForm({ ...form, [name]: e.currentTarget.value })} data-testid={`contact-${name}`} aria-invalid={!!errors[name]} />
      )}
      {errors[name] && (
        <span class="field-error" data-testid={`contact-${name}-error`}>
          {errors[name]}
        </span>
      )}
    </label>
  );
  return (
    <form class="contact" onSubmit={save}>
      <div class="profile-head">
        <Avatar url={contact.avatar_url} size={48} testid="contact-avatar" />
        <button type="button" class="small" onClick={sync} disabled={syncing} data-testid="sync-profile">
          {syncing ? t('side.syncing') : t('side.sync_profile')}
        </button>
      </div>
      {synced && (
        <span class="ok" role="status" data-testid="synced">
          {t('side.synced')}
        </span>
      )}
      <label>
        {t('side.name')}
        <input value={form.name} onInput={(e) => setForm({ ...form, name: e.currentTarget.value })} data-testid="contact-name" aria-invalid={!!errors.name} />
        {contact.name && (
          <span class="hint" data-testid="name-source">
            {contact.name_source === 'agent' ? t('side.name_typed') : t('side.name_from_channel')}
          </span>
        )}
        {errors.name && (
          <span class="field-error" data-testid="contact-name-error">
            {errors.name}
          </span>
        )}
      </label>
      {field('phone', t('side.phone'))}
      <Suggested value={contact.suggested?.phone} onAccept={(v) => setForm({ ...form, phone: v })} testid="suggested-phone" />
      {field('email', t('side.email'))}
      <Suggested value={contact.suggested?.email} onAccept={(v) => setForm({ ...form, email: v })} testid="suggested-email" />
      {field('notes', t('side.notes'), true)}
      {errors._ && <span class="field-error">{errors._}</span>}
      <div class="row">
        <button type="submit" class="primary small" data-testid="contact-save">
          {t('side.save')}
        </button>
        {saved && <span class="ok">{t('side.saved')}</span>}
      </div>
    </form>
  );
}

function Tags({ c, onChanged }: { c: Conversation; onChanged: (c: Conversation) => void }) {
  const s = useShared();
  const [name, setName] = useState('');
  const [error, setError] = useState('');
  const change = async (method: 'POST' | 'DELETE', tag: string) => {
    setError('');
    try {
      onChanged(await api<Conversation>(method, `/conversations/${c.id}/tags`, { name: tag }));
      if (method === 'POST' && !s.tags.some((x) => x.name === tag.trim().toLowerCase())) await refreshTags();
      setName('');
    } catch (e) {
      if (e instanceof ApiError) setError(e.message);
    }
  };
  return (
    <div class="tags-box">
      <h4>{t('side.tags')}</h4>
      <div class="chips">
        {c.tags.map((tag) => (
          <span class="chip" key={tag} data-testid="tag-chip">
            {tag}
            <button class="link" aria-label={t('side.remove_tag', { tag })} onClick={() => change('DELETE', tag)}>
              ×
            </button>
          </span>
        ))}
      </div>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (name.trim()) change('POST', name);
        }}
      >
        <input list="tag-options" aria-label={t('side.add_tag')} placeholder={t('side.add_tag')} value={name} onInput={(e) => setName(e.currentTarget.value)} data-testid="tag-input" />
        <datalist id="tag-options">
          {s.tags.map((tg) => (
            <option value={tg.name} key={tg.id} />
          ))}
        </datalist>
      </form>
      {error && <span class="field-error">{error}</span>}
    </div>
  );
}

function People({ c }: { c: Conversation }) {
  return (
    <div class="people">
      <h4>{t('side.participants')}</h4>
      <p>{c.participants.length ? c.participants.map(agentName).join(', ') : t('side.nobody')}</p>
      <h4>{t('side.last_agent')}</h4>
      <p data-testid="last-agent">{c.last_assignee_id ? agentName(c.last_assignee_id) : t('side.nobody')}</p>
    </div>
  );
}

function historyLine(h: HistoryEntry): string {
  const d = (h.detail ?? {}) as Record<string, string>;
  const actor = h.actor_id ? agentName(h.actor_id) : h.kind === 'reopened' ? t('history.customer') : t('history.system');
  switch (h.kind) {
    case 'created':
      return t('history.created');
    case 'flow_started':
      return t('history.flow_started', { flow: d.flow ?? '' });
    case 'flow_step':
      return t('history.flow_step', { event: [d.event, d.detail].filter(Boolean).join(' · ') });
    case 'flow_ended':
      return t('history.flow_ended', { flow: d.flow ?? '', reason: d.reason ?? '' });
    case 'handed_off':
      return t('history.handed_off', { reason: [d.reason, d.note].filter(Boolean).join(' · ') });
    case 'taken_over':
      return t('history.taken_over', { actor });
    case 'comment_rule':
      return t('history.comment_rule', {
        rule: d.rule ?? '',
        action: t(`auto.${d.action}` as Key),
        because: becauseText((h.detail as Record<string, unknown> | null)?.because),
      });
    case 'auto_reply_switched':
      return t((h.detail as Record<string, unknown> | null)?.on ? 'history.auto_reply_on' : 'history.auto_reply_off', { actor });
    case 'reopened':
      return `${t('history.reopened')} (${actor})`;
    case 'claimed':
      return t('history.claimed', { actor });
    case 'assigned':
      return t('history.assigned', { actor, to: agentName(d.to) });
    case 'transferred':
      return t('history.transferred', { actor, to: agentName(d.to), message: d.message ?? '' });
    case 'participant_added':
      return t('history.participant_added', { actor, agent: agentName(d.agent_id) });
    case 'participant_left':
      return t('history.participant_left', { actor });
    case 'resolved':
      return t('history.resolved', { actor });
    case 'tagged':
      return t('history.tagged', { actor, tag: d.tag ?? '' });
    case 'untagged':
      return t('history.untagged', { actor, tag: d.tag ?? '' });
    case 'auto_assigned':
      return t('history.auto_assigned', { to: agentName(d.to) });
    case 'returned_to_pool':
      return t('history.returned_to_pool');
    case 'merged':
      return t(d.reason === 'private_reply' ? 'history.merged_private_reply' : 'history.merged');
    case 'reply_deadline_lapsed':
      return t('history.reply_deadline_lapsed', { agent: agentName(d.agent_id) });
    case 'auto_resolved':
      return t('history.auto_resolved');
    case 'auto_replied':
      return t('history.auto_replied');
    case 'automatic_message_refused':
      return t('history.automatic_message_refused', {
        what: d.purpose === 'closing_message' ? t('history.closing_message') : t('history.outside_hours_reply'),
        reason: reasonText(d.reason),
      });
    default:
      return `${h.kind} (${actor})`;
  }
}

function History({ c }: { c: Conversation }) {
  const [items, setItems] = useState<HistoryEntry[]>([]);
  useEffect(() => {
    const load = () => api<Page<HistoryEntry>>('GET', `/conversations/${c.id}/history`).then((p) => setItems(p.items));
    load();
    return realtime.on((e) => {
      if (e.conversation_id === c.id && e.type.startsWith('conversation.')) load();
    });
  }, [c.id]);
  return (
    <ol class="history" data-testid="history">
      {items.map((h) => (
        <li key={h.id}>
          <span class="time">{formatTime(h.created_at)}</span> {historyLine(h)}
        </li>
      ))}
    </ol>
  );
}

function Media({ c }: { c: Conversation }) {
  const [items, setItems] = useState<Attachment[]>([]);
  useEffect(() => {
    api<Page<Attachment>>('GET', `/conversations/${c.id}/attachments`).then((p) => setItems(p.items));
  }, [c.id]);
  if (items.length === 0) return <p class="empty">{t('side.no_media')}</p>;
  return (
    <div class="gallery">
      {items.map((a) => (
        <FileView a={a} key={a.id} compact />
      ))}
    </div>
  );
}

function CustomerConversations({ c, onOpen, onFilter }: { c: Conversation; onOpen: (id: string) => void; onFilter: () => void }) {
  const [items, setItems] = useState<Conversation[]>([]);
  useEffect(() => {
    api<Page<Conversation>>('GET', `/conversations${query({ contact_id: c.contact_id })}`).then((p) => setItems(p.items));
  }, [c.contact_id]);
  return (
    <div class="customer-convs">
      <button class="link" onClick={onFilter} data-testid="filter-customer">
        {t('side.show_all_of_customer')}
      </button>
      <ul>
        {items.map((x) => (
          <li key={x.id}>
            <button class="link" onClick={() => onOpen(x.id)}>
              {x.inbox_name} · {t(`conv.${x.status}`)} · {formatTime(x.last_activity_at)}
            </button>
          </li>
        ))}
      </ul>
    </div>
  );
}
