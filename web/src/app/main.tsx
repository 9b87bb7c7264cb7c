import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import './app.css';
import { api, ApiError, Me, Presence } from './api';
import { lang, setLang, t } from './i18n';
import { realtime } from './realtime';
import { loadWorkspace, useShared, update, canSupervise, shared } from './store';
import { watchNewWork } from './notify';
import { toastSink } from './toast';
import { leaveStringsForPush } from './webpush';

const leaveStrings = () => {
  leaveStringsForPush().catch(() => undefined);
};
import { NotificationSettings, SoundToggle } from './settings';
import { fitToVisualViewport, useNarrow } from './mobile';
import { ConversationsPage } from './conversations';
import { AgentsPage, InboxesPage, QuickRepliesPage, TagsPage } from './admin';
import { LibraryPage } from './library';
import { FaqPage, FlowsPage } from './flows';
import { CommentRulesPage } from './comments';
import { ReportsPage } from './reports';

type PageName = 'conversations' | 'agents' | 'inboxes' | 'quick_replies' | 'library' | 'tags' | 'flows' | 'faq' | 'comment_rules' | 'reports';

interface Toast {
  id: number;
  text: string;
  undo?: () => void;
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
    const offWork = watchNewWork(push);
    const offEvents = realtime.on((e) => {
      const me = s.me?.id;
      if (e.type === 'presence') {
        const status = e.status as Presence;
        update({ agents: shared().agents.map((a) => (a.id === e.agent_id ? { ...a, presence: status, online: status === 'online' } : a)) });
        if (e.agent_id === me) setPresence(status);
      }
    });
    // A click on a browser notification opens its conversation; a push notification's click
    // comes through the service worker.
    const onOpen = () => setPage('conversations');
    window.addEventListener('sb-open-conversation', onOpen);
    const fromWorker = (m: MessageEvent) => {
      if (m.data?.type === 'open-conversation') window.dispatchEvent(new CustomEvent('sb-open-conversation', { detail: m.data.conversation_id }));
    };
    navigator.serviceWorker?.addEventListener('message', fromWorker);
    // The service worker words pushes with the app's strings, in the agent's language.
    leaveStringsForPush().catch(() => undefined);
    window.addEventListener('sb-lang', leaveStrings);
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
      offWork();
      offEvents();
      window.removeEventListener('sb-open-conversation', onOpen);
      navigator.serviceWorker?.removeEventListener('message', fromWorker);
      window.removeEventListener('sb-lang', leaveStrings);
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

  const push = (text: string, undo?: () => void) => {
    const id = Date.now() + Math.random();
    setToasts((ts) => [...ts, { id, text, undo }]);
    window.setTimeout(() => setToasts((ts) => ts.filter((x) => x.id !== id)), undo ? 10000 : 6000);
  };
  toastSink.push = push;

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
    ['library', t('nav.library'), canSupervise()],
    ['tags', t('nav.tags'), canSupervise()],
    ['flows', t('nav.flows'), canSupervise()],
    ['faq', t('nav.faq'), canSupervise()],
    ['comment_rules', t('nav.comment_rules'), canSupervise()],
    ['reports', t('nav.reports'), canSupervise()],
  ];
  const [menu, setMenu] = useState(false);
  const narrow = useNarrow();
  const [settings, setSettings] = useState(false);
  const choose = (p: PageName) => {
    setPage(p);
    setMenu(false);
  };
  return (
    <div class={menu ? 'shell menu-open' : 'shell'}>
      {narrow && (
      <header class="topbar">
        <button class="icon" aria-label={t('nav.menu')} aria-expanded={menu} onClick={() => setMenu(!menu)} data-testid="menu">
          <MenuIcon />
        </button>
        <span class="brand">{nav.find(([p]) => p === page)?.[1]}</span>
        <span class={connected ? 'conn ok' : 'conn down'}>{connected ? '' : t('status.reconnecting')}</span>
        <SoundToggle />
      </header>
      )}
      {menu && <div class="scrim" onClick={() => setMenu(false)} />}
      <nav class="sidebar" aria-label={t('nav.main')}>
        <div class="brand">{t('app.name')}</div>
        {nav
          .filter(([, , show]) => show)
          .map(([p, label]) => (
            <button key={p} class={page === p ? 'nav active' : 'nav'} aria-current={page === p ? 'page' : undefined} data-testid={`nav-${p}`} onClick={() => choose(p)}>
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
        <select class="presence-pick" aria-label={t('presence.mine')} value={presence === 'offline' ? 'online' : presence} onChange={(e) => choosePresence(e.currentTarget.value as Presence)} data-testid="presence">
          <option value="online">● {t('presence.online')}</option>
          <option value="away">◐ {t('presence.away')}</option>
        </select>
        <div class="row">
          <button class="link" onClick={() => setSettings(true)} data-testid="notification-settings">
            {t('settings.notifications')}
          </button>
          {!narrow && <SoundToggle />}
        </div>
        <LangSwitch />
        <button class="link" onClick={logout}>{t('nav.logout')}</button>
      </nav>
      <main class="main">
        {page === 'conversations' && <ConversationsPage />}
        {page === 'agents' && <AgentsPage />}
        {page === 'inboxes' && <InboxesPage />}
        {page === 'quick_replies' && <QuickRepliesPage />}
        {page === 'library' && <LibraryPage />}
        {page === 'tags' && <TagsPage />}
        {page === 'flows' && <FlowsPage />}
        {page === 'faq' && <FaqPage />}
        {page === 'comment_rules' && <CommentRulesPage />}
        {page === 'reports' && <ReportsPage />}
      </main>
      {settings && <NotificationSettings onClose={() => setSettings(false)} />}
      <div class="toasts" aria-live="polite">
        {toasts.map((x) => (
          <div class="toast" key={x.id} data-testid="toast">
            <span>{x.text}</span>
            {x.undo && (
              <button
                class="link"
                data-testid="undo"
                onClick={() => {
                  x.undo?.();
                  setToasts((ts) => ts.filter((y) => y.id !== x.id));
                }}
              >
                {t('toast.undo')}
              </button>
            )}
          </div>
        ))}
      </div>
    </div>
  );
}

function MenuIcon() {
  return (
    <svg width="22" height="22" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true">
      <path d="M3 6h18M3 12h18M3 18h18" />
    </svg>
  );
}

function Offline({ onRetry }: { onRetry: () => void }) {
  useEffect(() => {
    window.addEventListener('online', onRetry);
    return () => window.removeEventListener('online', onRetry);
  }, []);
  return (
    <div class="login">
      <div class="card offline" role="status" data-testid="offline">
        <h1>{t('offline.title')}</h1>
        <p>{t('offline.body')}</p>
        <button class="primary" onClick={onRetry}>
          {t('offline.retry')}
        </button>
        <LangSwitch />
      </div>
    </div>
  );
}

function App() {
  const [state, setState] = useState<'loading' | 'login' | 'in' | 'offline'>('loading');
  const [, force] = useState(0);
  const start = () => {
    setState('loading');
    api<Me>('GET', '/me')
      .then(() => loadWorkspace().then(() => setState('in')))
      .catch((e) => setState(e instanceof ApiError && e.status === 0 ? 'offline' : 'login'));
  };
  useEffect(() => {
    const onLang = () => force((n) => n + 1);
    window.addEventListener('sb-lang', onLang);
    document.documentElement.lang = lang();
    start();
    return () => window.removeEventListener('sb-lang', onLang);
  }, []);
  if (state === 'loading') return <div class="loading" />;
  if (state === 'offline') return <Offline onRetry={start} />;
  if (state === 'login') return <Login onDone={() => loadWorkspace().then(() => setState('in'))} />;
  return <Shell onLogout={() => setState('login')} />;
}

fitToVisualViewport();
render(<App />, document.getElementById('app')!);

// The installable app: a service worker keeps the app's shell for when the network is gone.
if ('serviceWorker' in navigator && window.isSecureContext) {
  navigator.serviceWorker.register('/sw.js').catch(() => undefined);
}
