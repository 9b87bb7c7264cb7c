import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import './app.css';
import { api, ApiError, Conversation, Me, Presence } from './api';
import { lang, setLang, t } from './i18n';
import { realtime } from './realtime';
import { loadWorkspace, useShared, update, canSupervise, agentName, displayName, selfActions, shared } from './store';
import { ConversationsPage } from './conversations';
import { AgentsPage, InboxesPage, QuickRepliesPage, TagsPage } from './admin';
import { FaqPage, FlowsPage } from './flows';
import { ReportsPage } from './reports';

type PageName = 'conversations' | 'agents' | 'inboxes' | 'quick_replies' | 'tags' | 'flows' | 'faq' | 'reports';

interface Toast {
  id: number;
  text: string;
}

function Login({ onDone }: { onDone: () => void }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const submit = async (e: Event) => {
    e.preventDefault();
    setError('');
    try {
      await api('POST', '/auth/login', { email, password });
      onDone();
    } catch (err) {
      if (err instanceof ApiError && err.code === 'rate_limited') setError(t('login.rate_limited', { s: 60 }));
      else if (err instanceof ApiError && err.status === 0) setError(t('error.network'));
      else setError(t('login.failed'));
    }
  };
  return (
    <div class="login">
      <form onSubmit={submit} class="card">
        <h1>{t('login.title')}</h1>
        <label>
          {t('login.email')}
          <input name="email" type="email" autocomplete="username" value={email} onInput={(e) => setEmail(e.currentTarget.value)} required />
        </label>
        <label>
          {t('login.password')}
          <input name="password" type="password" autocomplete="current-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} required />
        </label>
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit" class="primary">{t('login.submit')}</button>
        <LangSwitch />
      </form>
    </div>
  );
}

function LangSwitch() {
  const [, force] = useState(0);
  return (
    <button
      type="button"
      class="link lang-switch"
      data-testid="lang-switch"
      onClick={() => {
        setLang(lang() === 'vi' ? 'en' : 'vi');
        force((n) => n + 1);
        update({}); // re-render everything that reads strings
        window.dispatchEvent(new Event('sb-lang'));
      }}
    >
      {t('lang.switch')}
    </button>
  );
}

function Shell({ onLogout }: { onLogout: () => void }) {
  const s = useShared();
  const [page, setPage] = useState<PageName>('conversations');
  const [connected, setConnected] = useState(realtime.connected);
  const [toasts, setToasts] = useState<Toast[]>([]);

  useEffect(() => {
    realtime.start();
    const offStatus = realtime.onStatus(setConnected);
    const offEvents = realtime.on((e) => {
      const me = s.me?.id;
      const conv = e.conversation as { assignee_id?: string | null } | undefined;
      if (e.type === 'conversation.assigned' && conv && me && e.conversation_id) {
        const mine = conv.assignee_id === me && e.previous_assignee_id !== me;
        const lost = e.previous_assignee_id === me && conv.assignee_id !== me;
        // What you did yourself (claim, reopen) needs no notification.
        const byMe = selfActions.delete(e.conversation_id);
        if ((mine || lost) && !byMe) {
          api<Conversation>('GET', `/conversations/${e.conversation_id}`)
            .then((c) => {
              const name = displayName(c);
              push(mine ? t('notify.assigned', { name }) : t('notify.taken', { name, to: agentName(conv.assignee_id) }));
            })
            .catch(() => undefined);
        }
      }
      if (e.type === 'conversation.returned' && me && e.previous_assignee_id === me && e.conversation_id) {
        const key = e.reason === 'offline_release' ? 'notify.returned_offline' : 'notify.returned_sla';
        api<Conversation>('GET', `/conversations/${e.conversation_id}`)
          .then((c) => push(t(key, { name: displayName(c) })))
          .catch(() => undefined);
      }
      if (e.type === 'presence') {
        const status = e.status as Presence;
        update({ agents: shared().agents.map((a) => (a.id === e.agent_id ? { ...a, presence: status, online: status === 'online' } : a)) });
        if (e.agent_id === me) setPresence(status);
      }
    });
    // Tell the server the agent is at the keyboard (it turns idle agents "away").
    let lastActivity = 0;
    const activity = () => {
      const now = Date.now();
      if (now - lastActivity > 30_000) {
        lastActivity = now;
        realtime.send({ type: 'activity' });
      }
    };
    window.addEventListener('keydown', activity);
    window.addEventListener('pointerdown', activity);
    return () => {
      offStatus();
      offEvents();
      realtime.stop();
      window.removeEventListener('keydown', activity);
      window.removeEventListener('pointerdown', activity);
    };
  }, []);

  const [presence, setPresence] = useState<Presence>('online');
  const choosePresence = async (status: Presence) => {
    try {
      const r = await api<{ status: Presence }>('PUT', '/me/presence', { status });
      setPresence(r.status);
    } catch {
      /* the next presence event tells the truth */
    }
  };

  const push = (text: string) => {
    const id = Date.now() + Math.random();
    setToasts((ts) => [...ts, { id, text }]);
    window.setTimeout(() => setToasts((ts) => ts.filter((x) => x.id !== id)), 6000);
  };

  const logout = async () => {
    try {
      await api('POST', '/auth/logout');
    } finally {
      onLogout();
    }
  };

  const nav: [PageName, string, boolean][] = [
    ['conversations', t('nav.conversations'), true],
    ['agents', t('nav.agents'), s.me?.role === 'admin'],
    ['inboxes', t('nav.inboxes'), s.me?.role === 'admin'],
    ['quick_replies', t('nav.quick_replies'), canSupervise()],
    ['tags', t('nav.tags'), canSupervise()],
    ['flows', t('nav.flows'), canSupervise()],
    ['faq', t('nav.faq'), canSupervise()],
    ['reports', t('nav.reports'), canSupervise()],
  ];
  return (
    <div class="shell">
      <nav class="sidebar">
        <div class="brand">{t('app.name')}</div>
        {nav
          .filter(([, , show]) => show)
          .map(([p, label]) => (
            <button key={p} class={page === p ? 'nav active' : 'nav'} data-testid={`nav-${p}`} onClick={() => setPage(p)}>
              {label}
            </button>
          ))}
        <div class="grow" />
        <div class={connected ? 'conn ok' : 'conn down'} data-testid="connection">
          {connected ? t('status.online') : t('status.reconnecting')}
        </div>
        <div class="team" data-testid="team">
          <b>{t('presence.team')}</b>
          {s.agents
            .filter((a) => a.active && a.id !== s.me?.id)
            .map((a) => (
              <span key={a.id} title={t(`presence.${a.presence ?? 'offline'}`)}>
                <span class={`dot ${a.presence ?? 'offline'}`} />
                {a.name}
              </span>
            ))}
        </div>
        <div class="me" data-testid="me-name">{s.me?.name}</div>
        <select class="presence-pick" value={presence === 'offline' ? 'online' : presence} onChange={(e) => choosePresence(e.currentTarget.value as Presence)} data-testid="presence">
          <option value="online">● {t('presence.online')}</option>
          <option value="away">◐ {t('presence.away')}</option>
        </select>
        <LangSwitch />
        <button class="link" onClick={logout}>{t('nav.logout')}</button>
      </nav>
      <main class="main">
        {page === 'conversations' && <ConversationsPage />}
        {page === 'agents' && <AgentsPage />}
        {page === 'inboxes' && <InboxesPage />}
        {page === 'quick_replies' && <QuickRepliesPage />}
        {page === 'tags' && <TagsPage />}
        {page === 'flows' && <FlowsPage />}
        {page === 'faq' && <FaqPage />}
        {page === 'reports' && <ReportsPage />}
      </main>
      <div class="toasts" aria-live="polite">
        {toasts.map((x) => (
          <div class="toast" key={x.id} data-testid="toast">{x.text}</div>
        ))}
      </div>
    </div>
  );
}

function App() {
  const [state, setState] = useState<'loading' | 'login' | 'in'>('loading');
  const [, force] = useState(0);
  useEffect(() => {
    const onLang = () => force((n) => n + 1);
    window.addEventListener('sb-lang', onLang);
    document.documentElement.lang = lang();
    api<Me>('GET', '/me')
      .then(() => loadWorkspace().then(() => setState('in')))
      .catch(() => setState('login'));
    return () => window.removeEventListener('sb-lang', onLang);
  }, []);
  if (state === 'loading') return <div class="loading" />;
  if (state === 'login') return <Login onDone={() => loadWorkspace().then(() => setState('in'))} />;
  return <Shell onLogout={() => setState('login')} />;
}

render(<App />, document.getElementById('app')!);
