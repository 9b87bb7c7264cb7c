// Workspace-wide data every screen uses (who I am, colleagues, inboxes, tags, quick replies),
// loaded once and refreshed when it changes. Components subscribe with `useShared`.

import { useEffect, useState } from 'preact/hooks';
import { api, Agent, Conversation, Inbox, Me, Message, Page, QuickReply, Tag } from './api';
import { t } from './i18n';

export interface Shared {
  me: Me | null;
  agents: Agent[];
  inboxes: Inbox[];
  tags: Tag[];
  quickReplies: QuickReply[];
}

let state: Shared = { me: null, agents: [], inboxes: [], tags: [], quickReplies: [] };
const subs = new Set<() => void>();

export function shared(): Shared {
  return state;
}

export function update(patch: Partial<Shared>) {
  state = { ...state, ...patch };
  subs.forEach((s) => s());
}

export function useShared(): Shared {
  const [, force] = useState(0);
  useEffect(() => {
    const s = () => force((n) => n + 1);
    subs.add(s);
    return () => {
      subs.delete(s);
    };
  }, []);
  return state;
}

export async function loadWorkspace() {
  const [me, agents, inboxes, tags, qrs] = await Promise.all([
    api<Me>('GET', '/me'),
    api<Page<Agent>>('GET', '/agents'),
    api<Page<Inbox>>('GET', '/inboxes'),
    api<Page<Tag>>('GET', '/tags'),
    api<Page<QuickReply>>('GET', '/quick-replies'),
  ]);
  update({ me, agents: agents.items, inboxes: inboxes.items, tags: tags.items, quickReplies: qrs.items });
}

export async function refreshTags() {
  update({ tags: (await api<Page<Tag>>('GET', '/tags')).items });
}

export async function refreshQuickReplies() {
  update({ quickReplies: (await api<Page<QuickReply>>('GET', '/quick-replies')).items });
}

export async function refreshAgents() {
  update({ agents: (await api<Page<Agent>>('GET', '/agents')).items });
}

export async function refreshInboxes() {
  update({ inboxes: (await api<Page<Inbox>>('GET', '/inboxes')).items });
}

export function agentName(id: string | null | undefined): string {
  if (!id) return '';
  return state.agents.find((a) => a.id === id)?.name ?? '…';
}

export function canSupervise(): boolean {
  return state.me?.role === 'admin' || state.me?.role === 'supervisor';
}

/** Threads already seen this session: opening a conversation shows these at once. */
export const threadCache = new Map<string, { items: Message[]; next_cursor: string | null }>();

/** Conversations this agent just changed themselves (so no notification is shown for them). */
export const selfActions = new Set<string>();

/** The customer's name, or "Visitor 1a2b" (website) / "Customer 1a2b" (other channels) while unknown. */
export function displayName(c: Pick<Conversation, 'contact_name' | 'contact_id'> & { channel?: string }): string {
  const who = c.channel && c.channel !== 'livechat' ? t('contact.unnamed') : t('contact.anonymous');
  return c.contact_name ?? `${who} ${c.contact_id.slice(-4)}`;
}

/** What a conversation row carries when dragged into the chat pane. */
export const DRAG_TYPE = 'application/x-switchboard-conversation';
