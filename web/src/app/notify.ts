// New work must not be missed: counts on the "Mine"/"Unassigned" tabs and in the tab title, a
// short sound, and browser notifications while the tab is hidden. What notifies is each agent's
// choice, kept with the agent on the server (`/me/notification-preferences`), so every browser
// and Web Push follow it.
//
// New work is: a conversation assigned to you, transferred to you, a new waiting customer in your
// inboxes, a customer answering a conversation you hold.

import { useEffect, useState } from 'preact/hooks';
import { api, Conversation, Page } from './api';
import { t } from './i18n';
import { realtime } from './realtime';
import { agentName, displayName, selfActions, shared } from './store';

export type Kind = 'assigned' | 'transferred' | 'waiting' | 'answered';
export const KINDS: Kind[] = ['assigned', 'transferred', 'waiting', 'answered'];

export interface Prefs {
  sound: boolean;
  kinds: Record<Kind, boolean>;
}

const DEFAULT_PREFS: Prefs = { sound: true, kinds: { assigned: true, transferred: true, waiting: true, answered: true } };
let current: Prefs = DEFAULT_PREFS;

export function prefs(): Prefs {
  return current;
}

/** The agent's choices from the server (at sign-in; everything on until they arrive). */
export async function loadPrefs(): Promise<void> {
  try {
    current = await api<Prefs>('GET', '/me/notification-preferences');
    changed();
  } catch {
    /* offline: keep what we have */
  }
}

/** Saves a choice for every device of this agent; shown at once, put back if the server refuses. */
export async function savePrefs(p: Prefs): Promise<void> {
  const before = current;
  current = p;
  changed();
  try {
    current = await api<Prefs>('PUT', '/me/notification-preferences', p);
  } catch (e) {
    current = before;
    throw e;
  } finally {
    changed();
  }
}

// ---- counts -------------------------------------------------------------------------------

export interface Counts {
  /** Conversations you hold with customer messages nobody has read. */
  mine: number;
  /** Customers waiting in the pool of your inboxes. */
  waiting: number;
}

let counts: Counts = { mine: 0, waiting: 0 };
let waitingIds = new Set<string>();
/** Conversations a live event said may have joined the pool: new work if the next look agrees. */
const joined = new Set<string>();
/** Your open conversations, by id (kept current by refreshes and by assignment events). */
const mine = new Map<string, Conversation>();
const subs = new Set<() => void>();

function changed() {
  subs.forEach((s) => s());
}

export function useCounts(): Counts {
  const [, force] = useState(0);
  useEffect(() => {
    const s = () => force((n) => n + 1);
    subs.add(s);
    return () => {
      subs.delete(s);
    };
  }, []);
  return counts;
}

function setTitle() {
  const n = counts.mine + counts.waiting;
  document.title = n > 0 ? `(${n > 99 ? '99+' : n}) ${t('app.name')}` : t('app.name');
}

let refreshing: Promise<void> | null = null;
let again = false;

/** Fetch both counts again (coalesced: one fetch at a time, one more if asked meanwhile). */
export function refreshCounts(): Promise<void> {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = (async () => {
    // Only what was announced before this look started: later ones wait for the next look.
    const asked = new Set(joined);
    try {
      const [pool, held] = await Promise.all([
        api<Page<Conversation>>('GET', '/conversations?status=pending&limit=100'),
        api<Page<Conversation>>('GET', '/conversations?assignee=me&status=open&limit=100'),
      ]);
      waitingIds = new Set(pool.items.map((c) => c.id));
      mine.clear();
      for (const c of held.items) mine.set(c.id, c);
      counts = { mine: held.items.filter((c) => c.unread_count > 0).length, waiting: pool.items.length };
      setTitle();
      changed();
      // A customer who joined the pool is new work once the pool confirms it (one assigned
      // automatically at once never rings as "waiting").
      for (const id of asked) joined.delete(id);
      for (const c of pool.items) if (asked.has(c.id)) newWork('waiting', c);
    } catch {
      /* offline: the next event or reconnect refreshes */
    } finally {
      refreshing = null;
      if (again) {
        again = false;
        refreshCounts();
      }
    }
  })();
  return refreshing;
}

// ---- sound --------------------------------------------------------------------------------

let audio: AudioContext | null = null;

/** A short two-note chime, made on the spot (no file to load). */
export async function playSound(kind: Kind | 'test') {
  if (!prefs().sound) return;
  try {
    audio ??= new AudioContext();
    if (audio.state !== 'running') await audio.resume();
    if (audio.state !== 'running') return; // the browser wants a click first
    const now = audio.currentTime;
    for (const [i, freq] of [880, 1320].entries()) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, now + i * 0.12);
      gain.gain.exponentialRampToValueAtTime(0.2, now + i * 0.12 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.12 + 0.18);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + i * 0.12);
      osc.stop(now + i * 0.12 + 0.2);
    }
    // Played: say so (tests and anything else that wants to know listen for it).
    window.dispatchEvent(new CustomEvent('sb-sound', { detail: kind }));
  } catch {
    /* no audio on this device */
  }
}

// ---- browser notifications ----------------------------------------------------------------

export function notificationsSupported(): boolean {
  return 'Notification' in window;
}

/** Ask for permission: call it from a click (browsers ignore requests without one). */
export async function askPermission(): Promise<NotificationPermission> {
  if (!notificationsSupported()) return 'denied';
  const p = await Notification.requestPermission();
  changed();
  return p;
}

/** The conversation the agent is looking at (no alarm for what is already on screen). */
let onScreen: string | null = null;
export function setOnScreen(id: string | null) {
  onScreen = id;
}

const TITLES: Record<Kind, 'notify.assigned' | 'notify.transferred' | 'notify.waiting' | 'notify.answered'> = {
  assigned: 'notify.assigned',
  transferred: 'notify.transferred',
  waiting: 'notify.waiting',
  answered: 'notify.answered',
};

let toast: (text: string) => void = () => undefined;

function newWork(kind: Kind, c: Pick<Conversation, 'id' | 'contact_name' | 'contact_id' | 'channel'>, body?: string) {
  const visible = document.visibilityState === 'visible';
  const text = t(TITLES[kind], { name: displayName(c) });
  if (kind === 'assigned' || kind === 'transferred') toast(text);
  if (visible && onScreen === c.id) return;
  if (!prefs().kinds[kind]) return;
  playSound(kind);
  if (!visible && notificationsSupported() && Notification.permission === 'granted') {
    const n = new Notification(text, { body: body ?? '', tag: `${kind}-${c.id}`, icon: '/icons/icon-192.png' });
    n.onclick = () => {
      window.focus();
      window.dispatchEvent(new CustomEvent('sb-open-conversation', { detail: c.id }));
      n.close();
    };
  }
}

/** Watch the live events for new work; `push` shows a toast. Returns a stop function. */
export function watchNewWork(push: (text: string) => void): () => void {
  toast = push;
  void loadPrefs();
  let timer: number | undefined;
  const soon = () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(refreshCounts, 200);
  };
  refreshCounts();
  const off = realtime.on((e) => {
    const me = shared().me?.id;
    if (e.type === 'hello') soon();
    if (!e.conversation_id || !me) return;
    const id = e.conversation_id;
    if (e.type === 'conversation.assigned') {
      const conv = e.conversation as { assignee_id?: string | null } | undefined;
      const toMe = conv?.assignee_id === me && e.previous_assignee_id !== me;
      const lost = e.previous_assignee_id === me && conv?.assignee_id !== me;
      if (lost) mine.delete(id);
      // What you did yourself (claim, reopen) needs no notification.
      const byMe = selfActions.delete(id);
      if (toMe || lost) {
        api<Conversation>('GET', `/conversations/${id}`)
          .then((c) => {
            if (toMe) mine.set(id, c);
            if (byMe) return;
            if (toMe) newWork(e.previous_assignee_id ? 'transferred' : 'assigned', c, c.last_message_preview ?? '');
            else push(t('notify.taken', { name: displayName(c), to: agentName(conv?.assignee_id) }));
          })
          .catch(() => undefined);
      }
    }
    if (e.type === 'conversation.returned' && e.previous_assignee_id === me) {
      const key = e.reason === 'offline_release' ? 'notify.returned_offline' : 'notify.returned_sla';
      api<Conversation>('GET', `/conversations/${id}`)
        .then((c) => push(t(key, { name: displayName(c) })))
        .catch(() => undefined);
    }
    if (e.type === 'conversation.resolved') mine.delete(id);
    const status = (e.conversation as { status?: string } | undefined)?.status;
    if (e.type.startsWith('conversation.') && status === 'pending' && !waitingIds.has(id)) joined.add(id);
    const m = e.message as { sender_kind?: string; text?: string } | undefined;
    const held = mine.get(id);
    if (e.type === 'message.created' && m?.sender_kind === 'customer' && held) newWork('answered', held, m.text ?? '');
    // Counts change when a conversation does, or when a customer writes (unread).
    if (e.type.startsWith('conversation.') || (e.type === 'message.created' && m?.sender_kind === 'customer')) soon();
  });
  return () => {
    off();
    window.clearTimeout(timer);
    toast = () => undefined;
  };
}
