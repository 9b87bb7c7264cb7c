// The chat pane: header with the conversation's actions, the thread (infinite scroll upwards,
// cached), and the composer. Agents drop a conversation here to open it.

import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, Conversation, Message, MessageMeta, Page, Policy, query, Template, Timer } from './api';
import { errorText, formatCountdown, formatTime, reasonText, t } from './i18n';
import { realtime } from './realtime';
import { agentName, canSupervise, displayName, DRAG_TYPE, selfActions, shared, threadCache, useShared } from './store';
import { Composer } from './composer';
import { BotBanner } from './flows';
import { AutoActions } from './comments';
import { attachmentLocation, ContactCards, FileView } from './files';
import { Confirm } from './confirm';
import { Avatar } from './icons';
import { refreshCounts, setOnScreen } from './notify';

type Dialog = null | 'transfer' | 'assign' | 'participant';

export function ChatPane(props: {
  conversation: Conversation | null;
  onOpen: (id: string) => void;
  onChanged: (c: Conversation) => void;
  onBack: () => void;
  onCustomer: () => void;
}) {
  const [dragOver, setDragOver] = useState(false);
  const drop = {
    onDragOver: (e: DragEvent) => {
      if (e.dataTransfer?.types.includes(DRAG_TYPE)) {
        e.preventDefault();
        setDragOver(true);
      }
    },
    onDragLeave: () => setDragOver(false),
    onDrop: (e: DragEvent) => {
      const id = e.dataTransfer?.getData(DRAG_TYPE);
      setDragOver(false);
      if (id) {
        e.preventDefault();
        props.onOpen(id);
      }
    },
  };
  const c = props.conversation;
  return (
    <section class={dragOver ? 'chat drag-over' : 'chat'} {...drop} data-testid="chat-pane">
      {c ? <Chat c={c} onChanged={props.onChanged} onBack={props.onBack} onCustomer={props.onCustomer} /> : <p class="empty center">{t('chat.pick')}</p>}
      {dragOver && <div class="drop-hint">{t('list.drag_hint')}</div>}
    </section>
  );
}

function Chat({ c, onChanged, onBack, onCustomer }: { c: Conversation; onChanged: (c: Conversation) => void; onBack: () => void; onCustomer: () => void }) {
  const s = useShared();
  const me = s.me!;
  const [error, setError] = useState('');
  const [dialog, setDialog] = useState<Dialog>(null);
  const [unanswered, setUnanswered] = useState(0);
  useEffect(() => {
    setOnScreen(c.id);
    return () => setOnScreen(null);
  }, [c.id]);
  const holder = c.assignee_id;
  const mine = holder === me.id;
  const participant = c.participants.includes(me.id);
  const canReply = c.status === 'open' && (mine || participant);
  const [policy, reloadPolicy] = usePolicy(c);
  const [confirmed, setConfirmed] = useState(false);
  const policyAllows =
    !policy || policy.mode === 'no_window' || policy.mode === 'open' || (policy.mode === 'human_agent' && confirmed && policy.can_message !== false);

  const act = async (path: string, body?: unknown) => {
    setError('');
    try {
      if (path === '/claim' || path === '/reopen') selfActions.add(c.id);
      onChanged(await api<Conversation>(path.startsWith('DELETE ') ? 'DELETE' : 'POST', `/conversations/${c.id}${path.replace('DELETE ', '')}`, body));
      setDialog(null);
    } catch (e) {
      selfActions.delete(c.id);
      if (e instanceof ApiError) {
        const who = typeof e.extra.holder_name === 'string' ? ` (${e.extra.holder_name})` : '';
        setError(errorText(e.code, e.message) + who);
      }
    }
  };

  // Ending a conversation whose customer is still waiting for an answer asks first.
  const resolve = async () => {
    let n = 0;
    try {
      n = countUnanswered((await api<Page<Message>>('GET', `/conversations/${c.id}/messages?limit=50`)).items);
    } catch {
      n = 0;
    }
    if (n > 0) setUnanswered(n);
    else act('/resolve');
  };

  let hint = '';
  if (c.status === 'pending') hint = t('chat.pending_hint');
  else if (c.status === 'resolved') hint = t('chat.resolved_hint');
  else if (!canReply && holder) hint = t('chat.other_hint', { name: agentName(holder) });

  return (
    <div class="chat-inner">
      <header class="chat-head">
        <button class="icon back mobile-only" aria-label={t('nav.back_to_list')} onClick={onBack} data-testid="back">
          <Arrow />
        </button>
        <Avatar url={c.contact_avatar_url} size={36} testid="chat-avatar" />
        <div class="who-box">
          <div class="title" data-testid="chat-title">
            {displayName(c)}
            {policy?.open_in_provider_app_url && (
              <a href={policy.open_in_provider_app_url} target="_blank" rel="noopener noreferrer" class="open-app" data-testid="open-in-app">
                {t('chat.open_in_app')}
              </a>
            )}
          </div>
          <div class="sub">
            {c.inbox_name} · <span class={`status ${c.status}`}>{t(`conv.${c.status}`)}</span>
            {holder && (
              <span class="holder" data-testid="holder">
                {' · '}
                {mine ? t('chat.claimed_by_you') : t('chat.claimed_by', { name: agentName(holder) })}
              </span>
            )}
            {mine && <SlaCountdown c={c} />}
          </div>
        </div>
        <button class="icon mobile-only" aria-label={t('chat.customer_info')} onClick={onCustomer} data-testid="customer-info">
          <Info />
        </button>
        <div class="actions">
          {c.status === 'pending' && (
            <button class="primary" data-testid="claim" onClick={() => act('/claim')}>
              {t('chat.claim')}
            </button>
          )}
          {c.status === 'open' && (mine || canSupervise()) && (
            <button onClick={() => setDialog('transfer')} data-testid="transfer">
              {t('chat.transfer')}
            </button>
          )}
          {c.status !== 'resolved' && canSupervise() && (
            <button onClick={() => setDialog('assign')} data-testid="assign">
              {t('chat.assign')}
            </button>
          )}
          {c.status === 'open' && (mine || participant || canSupervise()) && (
            <button onClick={() => setDialog('participant')} data-testid="add-participant">
              {t('chat.add_participant')}
            </button>
          )}
          {participant && <button onClick={() => act('DELETE /participants/me')}>{t('chat.leave')}</button>}
          {c.status !== 'resolved' && (c.status === 'pending' || mine || participant || canSupervise()) && (
            <button onClick={resolve} data-testid="resolve">
              {t('chat.resolve')}
            </button>
          )}
          {c.status === 'resolved' && (
            <button onClick={() => act('/reopen')} data-testid="reopen">
              {t('chat.reopen')}
            </button>
          )}
        </div>
      </header>
      {error && <div class="banner error" role="alert">{error}</div>}
      <BotBanner c={c} onChanged={onChanged} />
      {unanswered > 0 && (
        <Confirm
          title={t('confirm.resolve_title')}
          body={t('confirm.resolve_body', { n: unanswered })}
          confirm={t('confirm.resolve_ok')}
          onCancel={() => setUnanswered(0)}
          onConfirm={() => {
            setUnanswered(0);
            act('/resolve');
          }}
        />
      )}
      {dialog && (
        <AgentDialog
          kind={dialog}
          c={c}
          onCancel={() => setDialog(null)}
          onConfirm={(agent_id, message) =>
            act(dialog === 'transfer' ? '/transfer' : dialog === 'assign' ? '/assign' : '/participants', dialog === 'transfer' ? { agent_id, message } : { agent_id })
          }
        />
      )}
      <Thread c={c} />
      {hint && (
        <div class="banner" data-testid="composer-hint">
          {hint}
          {c.status === 'pending' && (
            <button class="primary small" onClick={() => act('/claim')}>
              {t('chat.claim')}
            </button>
          )}
        </div>
      )}
      {canReply && policy && <PolicyBar policy={policy} confirmed={confirmed} onConfirm={setConfirmed} />}
      {canReply && policy?.mode === 'template_only' && policy.channel === 'whatsapp' && <TemplatePicker c={c} />}
      <Composer
        c={c}
        enabled={canReply && policyAllows}
        extra={policy?.mode === 'human_agent' && confirmed ? { policy: { human_agent_confirmed: true } } : {}}
        onRefused={reloadPolicy}
      />
    </div>
  );
}

/** Customer messages after the last public answer (messages oldest first). */
export function countUnanswered(items: Message[]): number {
  let n = 0;
  for (const m of items) {
    if (m.private || m.kind === 'system') continue;
    if (m.sender_kind === 'customer') n += 1;
    else if (m.direction === 'outbound') n = 0;
  }
  return n;
}

function Arrow() {
  return (
    <svg width="22" height="22" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true">
      <path d="M15 18l-6-6 6-6" />
    </svg>
  );
}

function Info() {
  return (
    <svg width="22" height="22" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true">
      <circle cx="12" cy="8" r="4" />
      <path d="M4 21c0-4 4-6 8-6s8 2 8 6" />
    </svg>
  );
}

/** The messaging-window answer for this conversation, refreshed when it changes. */
function usePolicy(c: Conversation): [Policy | null, () => void] {
  const [policy, setPolicy] = useState<Policy | null>(null);
  const [n, setN] = useState(0);
  useEffect(() => {
    let alive = true;
    api<Policy>('GET', `/conversations/${c.id}/policy`)
      .then((p) => alive && setPolicy(p))
      .catch(() => alive && setPolicy(null));
    return () => {
      alive = false;
    };
  }, [c.id, c.version, c.last_customer_message_at, n]);
  return [policy, () => setN((x) => x + 1)];
}

/** Countdown, the HUMAN_AGENT confirmation, or why the composer is closed (server decides; this shows it). */
function PolicyBar({ policy, confirmed, onConfirm }: { policy: Policy; confirmed: boolean; onConfirm: (v: boolean) => void }) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const h = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(h);
  }, []);
  if (policy.unreachable) {
    return (
      <div class="banner error" data-testid="policy">
        {t('policy.unreachable', { reason: policy.unreachable })}
      </div>
    );
  }
  if (policy.mode === 'no_window') return null;
  if (policy.can_message === false) {
    return (
      <div class="banner" data-testid="policy">
        {t('policy.comment_only')}
      </div>
    );
  }
  if (policy.mode === 'open') {
    const free = policy.quota?.free_left;
    return (
      <div class="policy-line" data-testid="policy">
        {policy.window_ends_at && t('policy.open', { time: formatCountdown(policy.window_ends_at - now) })}
        {policy.channel === 'zalo' && (policy.paid ? ` · ${t('policy.zalo_paid')}` : free != null ? ` · ${t('policy.zalo_free', { n: free })}` : '')}
      </div>
    );
  }
  if (policy.mode === 'template_only') {
    return (
      <div class="banner warn" data-testid="policy">
        <b>{t('policy.template_only')}</b>
      </div>
    );
  }
  if (policy.mode === 'human_agent') {
    return (
      <div class="banner warn" data-testid="policy">
        <div>
          <b>{t('policy.human_agent')}</b>
          {policy.human_agent_until && <span> {t('policy.human_agent_until', { time: formatCountdown(policy.human_agent_until - now) })}</span>}
        </div>
        <label class="check">
          <input type="checkbox" checked={confirmed} onChange={(e) => onConfirm(e.currentTarget.checked)} data-testid="policy-confirm" />
          {t('policy.confirm')}
        </label>
      </div>
    );
  }
  return (
    <div class="banner error" data-testid="policy">
      {policy.reason === 'window_closed' || policy.mode === 'closed' ? t('policy.closed') : t('policy.closed_generic', { reason: policy.reason ?? '' })}
      {policy.open_in_provider_app_url && (
        <a href={policy.open_in_provider_app_url} target="_blank" rel="noopener" class="open-app">
          {t('policy.open_in_app')}
        </a>
      )}
    </div>
  );
}

/** WhatsApp outside the window: pick an approved template, fill its placeholders, send. */
function TemplatePicker({ c }: { c: Conversation }) {
  const [templates, setTemplates] = useState<Template[]>([]);
  const [chosen, setChosen] = useState<Template | null>(null);
  const [values, setValues] = useState<Record<string, string>>({});
  const [error, setError] = useState('');
  const [sent, setSent] = useState(false);
  useEffect(() => {
    api<Page<Template>>('GET', `/inboxes/${c.inbox_id}/templates`)
      .then((p) => setTemplates(p.items.filter((x) => x.status.toUpperCase() === 'APPROVED')))
      .catch(() => setTemplates([]));
  }, [c.inbox_id]);
  if (templates.length === 0) return <div class="banner">{t('template.none')}</div>;
  const p = chosen?.parameters;
  const field = (key: string, label: string) => (
    <label key={key}>
      {label}
      <input value={values[key] ?? ''} onInput={(e) => setValues({ ...values, [key]: e.currentTarget.value })} data-testid={`tpl-${key}`} />
    </label>
  );
  const send = async (e: Event) => {
    e.preventDefault();
    if (!chosen || !p) return;
    setError('');
    setSent(false);
    const parameters = {
      header: p.header_text.map((_, i) => values[`h${i}`] ?? ''),
      header_media_link: p.header_media ? values.media || null : null,
      body: p.body.map((_, i) => values[`b${i}`] ?? ''),
      buttons: p.buttons.map(([index, ph]) => ({ index, parameters: ph.map((_, i) => values[`k${index}_${i}`] ?? '') })),
    };
    try {
      await api('POST', `/conversations/${c.id}/whatsapp-messages`, { type: 'template', template: { name: chosen.name, language: chosen.language, parameters } });
      setSent(true);
      setValues({});
    } catch (err) {
      if (err instanceof ApiError) setError(errorText(err.code, err.message));
    }
  };
  return (
    <form class="template-picker" onSubmit={send} data-testid="template-picker">
      <select
        value={chosen ? `${chosen.name}|${chosen.language}` : ''}
        onChange={(e) => {
          setChosen(templates.find((x) => `${x.name}|${x.language}` === e.currentTarget.value) ?? null);
          setValues({});
        }}
        data-testid="template-select"
      >
        <option value="">{t('template.choose')}</option>
        {templates.map((x) => (
          <option key={`${x.name}|${x.language}`} value={`${x.name}|${x.language}`}>
            {x.name} ({x.language}, {x.category})
          </option>
        ))}
      </select>
      {chosen && p && (
        <>
          <div class="template-preview">
            {chosen.header && <b>{chosen.header}</b>}
            <div>{chosen.body}</div>
            {chosen.footer && <small>{chosen.footer}</small>}
          </div>
          <div class="grid2">
            {p.header_media && field('media', t('template.media_link', { kind: p.header_media }))}
            {p.header_text.map((ph, i) => field(`h${i}`, `${t('template.header')} {{${ph}}}`))}
            {p.body.map((ph, i) => field(`b${i}`, `${t('template.body')} {{${ph}}}`))}
            {p.buttons.flatMap(([index, ph]) => ph.map((x, i) => field(`k${index}_${i}`, `${t('template.button', { n: index + 1 })} {{${x}}}`)))}
          </div>
          <div class="row">
            <button class="primary" type="submit" data-testid="template-send">
              {t('template.send')}
            </button>
            {sent && <span class="ok">✓</span>}
          </div>
        </>
      )}
      {error && <div class="error">{error}</div>}
    </form>
  );
}

/** "Reply within 4:59": the reply-SLA deadline of the conversation you hold, if the inbox has one. */
function SlaCountdown({ c }: { c: Conversation }) {
  const [due, setDue] = useState<number | null>(null);
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    let alive = true;
    api<Page<Timer>>('GET', `/conversations/${c.id}/timers`)
      .then((p) => alive && setDue(p.items.find((x) => x.kind === 'reply_sla')?.due_at ?? null))
      .catch(() => undefined);
    return () => {
      alive = false;
    };
  }, [c.id, c.version, c.last_activity_at]);
  useEffect(() => {
    if (due === null) return;
    const h = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(h);
  }, [due]);
  if (due === null) return null;
  const left = Math.max(0, Math.round((due - now) / 1000));
  const text = left === 0 ? t('chat.sla_overdue') : t('chat.sla', { time: `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}` });
  return (
    <span class={left === 0 ? 'sla overdue' : 'sla'} data-testid="sla">
      {' · '}
      {text}
    </span>
  );
}

function AgentDialog(props: { kind: Exclude<Dialog, null>; c: Conversation; onCancel: () => void; onConfirm: (agentId: string, message: string) => void }) {
  const s = useShared();
  const [agent, setAgent] = useState('');
  const [message, setMessage] = useState('');
  const candidates = s.agents.filter((a) => a.active && a.id !== props.c.assignee_id && !props.c.participants.includes(a.id));
  const label = props.kind === 'transfer' ? t('chat.transfer_to') : props.kind === 'assign' ? t('chat.assign_to') : t('chat.add_participant');
  return (
    <div class="dialog" role="dialog" data-testid="agent-dialog">
      <label>
        {label}
        <select value={agent} onChange={(e) => setAgent(e.currentTarget.value)} data-testid="dialog-agent">
          <option value="">{t('chat.choose_agent')}</option>
          {candidates.map((a) => (
            <option value={a.id} key={a.id}>
              {a.name} {a.online ? '●' : ''}
            </option>
          ))}
        </select>
      </label>
      {props.kind === 'transfer' && (
        <label>
          {t('chat.transfer_message')}
          <textarea value={message} onInput={(e) => setMessage(e.currentTarget.value)} data-testid="dialog-message" rows={2} />
        </label>
      )}
      <div class="row end">
        <button onClick={props.onCancel}>{t('chat.cancel')}</button>
        <button class="primary" disabled={!agent} onClick={() => props.onConfirm(agent, message)} data-testid="dialog-confirm">
          {t('chat.confirm')}
        </button>
      </div>
    </div>
  );
}

function Thread({ c }: { c: Conversation }) {
  const cached = threadCache.get(c.id);
  const [items, setItems] = useState<Message[]>(cached?.items ?? []);
  const [cursor, setCursor] = useState<string | null>(cached?.next_cursor ?? null);
  const [loadingOlder, setLoadingOlder] = useState(false);
  const [typing, setTyping] = useState('');
  const ref = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const keepFrom = useRef<number | null>(null);

  const save = (next: Message[], nextCursor: string | null) => {
    threadCache.set(c.id, { items: next, next_cursor: nextCursor });
  };

  useEffect(() => {
    let alive = true;
    api<Page<Message>>('GET', `/conversations/${c.id}/messages`).then((p) => {
      if (!alive) return;
      setItems(p.items);
      setCursor(p.next_cursor);
      save(p.items, p.next_cursor);
    });
    api('POST', `/conversations/${c.id}/read`)
      .then(() => refreshCounts())
      .catch(() => undefined);
    let typingTimer: number | undefined;
    const off = realtime.on((e) => {
      if (e.conversation_id !== c.id) return;
      if ((e.type === 'message.created' || e.type === 'message.updated') && e.message) {
        const m = e.message as Message;
        const add = async () => {
          let full = m;
          if (m.kind === 'media' || e.attachments_changed) {
            const page = await api<Page<Message>>('GET', `/conversations/${c.id}/messages?limit=20`);
            full = page.items.find((x) => x.id === m.id) ?? m;
          }
          setItems((old) => {
            const i = old.findIndex((x) => x.id === m.id);
            const next = i >= 0 ? old.map((x) => (x.id === m.id ? { ...x, ...full } : x)) : [...old, full];
            save(next, cursorRef.current);
            return next;
          });
        };
        add();
        if (m.sender_kind === 'customer') {
          setTyping('');
          api('POST', `/conversations/${c.id}/read`)
            .then(() => refreshCounts())
            .catch(() => undefined);
        }
      }
      if (e.type === 'typing') {
        const who = e.actor === 'customer' ? t('chat.typing_customer') : e.agent_id === shared().me?.id ? '' : t('chat.typing_agent', { name: String(e.agent_name ?? '') });
        if (!who) return;
        setTyping(who);
        window.clearTimeout(typingTimer);
        typingTimer = window.setTimeout(() => setTyping(''), 4000);
      }
    });
    return () => {
      alive = false;
      off();
      window.clearTimeout(typingTimer);
    };
  }, [c.id]);

  const cursorRef = useRef(cursor);
  cursorRef.current = cursor;

  // Keep the view at the bottom for new messages, and steady when older ones are prepended.
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    if (keepFrom.current !== null) {
      el.scrollTop = el.scrollHeight - keepFrom.current;
      keepFrom.current = null;
    } else if (stick.current) {
      el.scrollTop = el.scrollHeight;
    }
  }, [items, typing]);

  const onScroll = async () => {
    const el = ref.current;
    if (!el) return;
    stick.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 40;
    if (el.scrollTop < 60 && cursor && !loadingOlder) {
      setLoadingOlder(true);
      try {
        const p = await api<Page<Message>>('GET', `/conversations/${c.id}/messages${query({ before: cursor })}`);
        keepFrom.current = el.scrollHeight - el.scrollTop;
        setItems((old) => {
          const next = [...p.items, ...old];
          save(next, p.next_cursor);
          return next;
        });
        setCursor(p.next_cursor);
      } finally {
        setLoadingOlder(false);
      }
    }
  };

  // A quote of a message the customer has since deleted is not shown either.
  const unsent = new Set(items.filter((m) => m.meta?.deleted).map((m) => m.id));
  return (
    <div class="thread" ref={ref} onScroll={onScroll} data-testid="thread">
      {loadingOlder && <p class="older">{t('chat.load_older')}</p>}
      {items.map((m) => (
        <Bubble key={m.id} m={m} unsent={unsent} />
      ))}
      {typing && (
        <p class="typing" data-testid="typing">
          {typing}
        </p>
      )}
    </div>
  );
}

function Bubble({ m, unsent }: { m: Message; unsent: Set<string> }) {
  const me = shared().me?.id;
  const cls =
    m.kind === 'note'
      ? 'note'
      : m.kind === 'agent_to_agent'
        ? 'a2a'
        : m.kind === 'system'
          ? 'system'
          : m.sender_kind === 'customer'
            ? 'customer'
            : m.sender_kind === 'bot'
              ? 'bot'
              : 'agent';
  const who =
    m.sender_kind === 'customer' ? '' : m.sender_kind === 'bot' ? t('chat.bot') : m.sender_agent_id === me ? t('chat.you') : agentName(m.sender_agent_id);
  const meta = m.meta ?? {};
  // Messages stored before customers' files were downloaded show the provider's links.
  const providerFiles = m.attachments && m.attachments.length > 0 ? [] : (meta.attachments ?? []).filter((a) => a.url);
  return (
    <div class={`bubble ${cls}${m.kind === 'comment' ? ' comment' : ''}`} id={`msg-${m.id}`} data-testid="message" data-kind={m.kind}>
      {(m.kind === 'note' || m.kind === 'agent_to_agent') && <div class="label">{m.kind === 'note' ? t('chat.private_note') : t('chat.to_colleague')}</div>}
      {m.kind === 'comment' && (
        <div class="label">
          {t('comment.on_post')}
          {meta.comment?.post_link && (
            <>
              {' · '}
              <a href={meta.comment.post_link} target="_blank" rel="noopener">
                {t('comment.view_post')}
              </a>
            </>
          )}
          {meta.comment?.hidden && <span class="tagline"> · {t('comment.hidden')}</span>}
          {meta.comment?.removed && <span class="tagline"> · {t('comment.removed')}</span>}
          <AutoActions auto={meta.comment?.auto} />
        </div>
      )}
      {who && <div class="who">{who}</div>}
      <Context meta={meta} quoteGone={!!meta.reply_to_message_id && unsent.has(meta.reply_to_message_id)} />
      {m.attachments && m.attachments.length > 0 ? (
        <div class="attachments">
          {m.attachments.map((a) => (
            <FileView a={a} key={a.id} />
          ))}
          {m.text !== m.attachments[0]?.filename && <div class="text">{m.text}</div>}
        </div>
      ) : (
        <div class={meta.deleted ? (m.text ? 'text deleted' : 'text deleted-note') : 'text'}>{meta.deleted && !m.text ? t('message.deleted_text') : m.text}</div>
      )}
      {mapLink(meta.location ?? attachmentLocation(meta)) && (
        <a class="map" href={mapLink(meta.location ?? attachmentLocation(meta))} target="_blank" rel="noopener noreferrer" data-testid="map">
          {t('message.open_map')}
        </a>
      )}
      <ContactCards meta={meta} />
      {providerFiles.length > 0 && (
        <div class="attachments">
          {providerFiles.map((a, i) => {
            // Providers' attachments name their kind `type`.
            const kind = a.type ?? a.kind;
            return kind === 'image' || kind === 'sticker' ? (
              <a href={a.url ?? '#'} target="_blank" rel="noopener noreferrer" key={i}>
                <img src={a.url ?? ''} alt={kind} loading="lazy" referrerpolicy="no-referrer" />
              </a>
            ) : kind === 'video' ? (
              <video src={a.url ?? ''} controls key={i} />
            ) : (
              <a class="file" href={a.url ?? '#'} target="_blank" rel="noopener noreferrer" key={i}>
                {kind}
              </a>
            );
          })}
        </div>
      )}
      {meta.reactions && Object.keys(meta.reactions).length > 0 && (
        <div class="reactions">
          {Object.values(meta.reactions)
            .map((r) => (typeof r === 'string' ? r : (r?.emoji ?? r?.reaction ?? '')))
            .join(' ')}
        </div>
      )}
      {m.kind === 'comment' && m.sender_kind === 'customer' && !meta.comment?.removed && <CommentActions m={m} />}
      <div class="foot">
        {formatTime(m.created_at)}
        {meta.edited && ` · ${t('message.edited')}`}
        {meta.deleted && ` · ${t('message.deleted')}`}
        {m.direction === 'outbound' && !m.private && (
          <span class={`delivery ${m.delivery_status}`} data-testid="delivery">
            {' · '}
            {t(`status.${m.delivery_status}` as 'status.sent')}
            {m.delivery_status === 'failed' && m.failure_reason && ` — ${reasonText(m.failure_reason)}`}
          </span>
        )}
      </div>
    </div>
  );
}

/** Only web links are followed (a provider's URL is customer-controlled data). */
function webUrl(u: string | null | undefined): string | undefined {
  return u && /^https:\/\//i.test(u) ? u : undefined;
}

/** A map for a shared location, when it has coordinates. */
function mapLink(l: MessageMeta['location']): string | undefined {
  const lat = Number(l?.latitude);
  const lon = Number(l?.longitude);
  if (!l || !Number.isFinite(lat) || !Number.isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) return undefined;
  return `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=16/${lat}/${lon}`;
}

/** What a message is in answer to or carries along: a forward's origin, the message it replies
 * to (a link to it when we have it), the story it answers or mentions. */
function Context({ meta, quoteGone }: { meta: MessageMeta; quoteGone: boolean }) {
  const forwarded = meta.forwarded_from
    ? t('message.forwarded_from', { who: meta.forwarded_from })
    : meta.context?.forwarded || meta.context?.frequently_forwarded
      ? t('message.forwarded')
      : '';
  const replying = meta.reply_to_message_id || meta.reply_to_text || meta.reply_to;
  const story = meta.story;
  const storyLabel = story
    ? story.mention
      ? t('message.story_mention')
      : story.chat
        ? t('message.story_forwarded')
        : t('message.story_reply')
    : '';
  if (!forwarded && !replying && !story) return null;
  return (
    <>
      {forwarded && (
        <div class="context forwarded" data-testid="forwarded">
          {forwarded}
        </div>
      )}
      {replying && (
        <div class="context reply-to" data-testid="reply-to">
          {meta.reply_to_message_id ? <a href={`#msg-${meta.reply_to_message_id}`}>{t('message.reply_to')}</a> : t(meta.reply_to_text ? 'message.reply_to' : 'message.reply_to_unknown')}
          {meta.reply_to_text && !quoteGone && <q>{meta.reply_to_text}</q>}
        </div>
      )}
      {story && (
        <div class="context story" data-testid="story">
          {storyLabel}
          {webUrl(story.url) && (
            <>
              {' · '}
              <a href={webUrl(story.url)} target="_blank" rel="noopener noreferrer">
                {t('message.view_story')}
              </a>
            </>
          )}
        </div>
      )}
    </>
  );
}

/** Like, reply publicly, reply privately (one DM), hide or delete a customer's comment. */
function CommentActions({ m }: { m: Message }) {
  const [writing, setWriting] = useState<null | 'reply' | 'private_reply'>(null);
  const [deleting, setDeleting] = useState(false);
  const [text, setText] = useState('');
  const [error, setError] = useState('');
  const c = m.meta?.comment ?? {};
  const act = async (action: string, body: Record<string, unknown> = {}) => {
    setError('');
    try {
      await api('POST', `/messages/${m.id}/comment-actions`, { action, ...body });
      setWriting(null);
      setText('');
    } catch (e) {
      if (e instanceof ApiError) setError(errorText(e.code, e.message));
    }
  };
  return (
    <div class="comment-actions" data-testid="comment-actions">
      <button class="link" onClick={() => act(c.liked ? 'unlike' : 'like')}>
        {c.liked ? t('comment.unlike') : t('comment.like')}
      </button>
      <button class="link" onClick={() => setWriting('reply')}>
        {t('comment.reply')}
      </button>
      <button class="link" onClick={() => setWriting('private_reply')} data-testid="private-reply">
        {t('comment.private_reply')}
      </button>
      <button class="link" onClick={() => act(c.hidden ? 'unhide' : 'hide')}>
        {c.hidden ? t('comment.unhide') : t('comment.hide')}
      </button>
      <span class="grow" />
      <button class="link danger" onClick={() => setDeleting(true)} data-testid="comment-delete">
        {t('comment.delete')}
      </button>
      {deleting && (
        <Confirm
          title={t('confirm.comment_title')}
          body={c.hidden ? t('confirm.comment_body_hidden') : t('confirm.comment_body')}
          confirm={t('confirm.comment_ok')}
          onCancel={() => setDeleting(false)}
          onConfirm={() => {
            setDeleting(false);
            act('delete');
          }}
        >
          {!c.hidden && (
            <button
              onClick={() => {
                setDeleting(false);
                act('hide');
              }}
              data-testid="confirm-hide"
            >
              {t('confirm.comment_hide_instead')}
            </button>
          )}
        </Confirm>
      )}
      {writing && (
        <form
          class="row"
          onSubmit={(e) => {
            e.preventDefault();
            if (text.trim()) act(writing, { text });
          }}
        >
          <input value={text} onInput={(e) => setText(e.currentTarget.value)} placeholder={writing === 'reply' ? t('comment.reply') : t('comment.private_reply')} />
          <button class="primary small" type="submit">
            {t('comment.send')}
          </button>
        </form>
      )}
      {error && <div class="error">{error}</div>}
    </div>
  );
}
