// The conversations screen: the live list (tabs, filters, search, virtualised), the chat pane and
// the customer side panel.

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, Conversation, Page, query } from './api';
import { formatTime, t } from './i18n';
import { realtime } from './realtime';
import { agentName, displayName, DRAG_TYPE, useShared } from './store';
import { Avatar, ChannelIcon } from './icons';
import { ChatPane } from './chat';
import { SidePanel } from './sidepanel';
import { useViewHistory } from './mobile';
import { useCounts } from './notify';

export type Tab = 'mine' | 'unassigned' | 'bot' | 'all' | 'resolved';

export interface Filter {
  tab: Tab;
  inbox_id: string;
  tag: string;
  q: string;
  contact_id: string;
}

const ROW_H = 68;

function listQuery(f: Filter, cursor: string | null): string {
  const base: Record<string, string | undefined> = {
    inbox_id: f.inbox_id,
    tag: f.tag,
    q: f.q.trim(),
    contact_id: f.contact_id,
    cursor: cursor ?? undefined,
    limit: '50',
  };
  if (f.tab === 'mine') Object.assign(base, { assignee: 'me', status: 'open' });
  if (f.tab === 'unassigned') Object.assign(base, { status: 'pending' });
  if (f.tab === 'bot') Object.assign(base, { status: 'bot' });
  if (f.tab === 'resolved') Object.assign(base, { status: 'resolved' });
  return query(base);
}

function matches(c: Conversation, f: Filter, me: string): boolean {
  const tabOk =
    f.tab === 'all' ||
    (f.tab === 'mine' && c.assignee_id === me && c.status === 'open') ||
    (f.tab === 'unassigned' && c.status === 'pending') ||
    (f.tab === 'bot' && c.status === 'bot') ||
    (f.tab === 'resolved' && c.status === 'resolved');
  return tabOk && (!f.inbox_id || c.inbox_id === f.inbox_id) && (!f.tag || c.tags.includes(f.tag)) && (!f.contact_id || c.contact_id === f.contact_id);
}

function byActivity(a: Conversation, b: Conversation): number {
  return b.last_activity_at - a.last_activity_at || (a.id < b.id ? 1 : -1);
}


export function ConversationsPage() {
  const s = useShared();
  const [filter, setFilter] = useState<Filter>({ tab: 'unassigned', inbox_id: '', tag: '', q: '', contact_id: '' });
  const [items, setItems] = useState<Conversation[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [selected, setSelected] = useState<string | null>(null);
  const [selectedConv, setSelectedConv] = useState<Conversation | null>(null);
  const filterRef = useRef(filter);
  filterRef.current = filter;
  const selectedRef = useRef(selected);
  selectedRef.current = selected;
  const me = s.me?.id ?? '';
  const { view, go, back, home } = useViewHistory();
  const counts = useCounts();

  const load = async (f: Filter, more: boolean) => {
    setLoading(true);
    try {
      const page = await api<Page<Conversation>>('GET', '/conversations' + listQuery(f, more ? cursor : null));
      if (filterRef.current !== f) return;
      setItems((old) => (more ? [...old, ...page.items.filter((c) => !old.some((o) => o.id === c.id))] : page.items));
      setCursor(page.next_cursor);
    } finally {
      setLoading(false);
    }
  };

  // Reload when the filter changes (search is debounced).
  useEffect(() => {
    const h = window.setTimeout(() => load(filter, false), filter.q ? 250 : 0);
    return () => window.clearTimeout(h);
  }, [filter]);

  // Live updates: fetch what changed and put it where it belongs in this view.
  useEffect(() => {
    const pending = new Set<string>();
    let timer: number | undefined;
    const flush = async () => {
      const ids = [...pending];
      pending.clear();
      const f = filterRef.current;
      if (f.q.trim()) {
        load(f, false);
        return;
      }
      for (const id of ids) {
        let c: Conversation | null = null;
        try {
          c = await api<Conversation>('GET', `/conversations/${id}`);
        } catch {
          c = null;
        }
        if (filterRef.current !== f) return;
        setItems((old) => {
          const rest = old.filter((o) => o.id !== id);
          return c && matches(c, f, me) ? [...rest, c].sort(byActivity) : rest;
        });
        if (c && id === selectedRef.current) setSelectedConv(c);
      }
    };
    const off = realtime.on((e) => {
      if (!e.conversation_id || (!e.type.startsWith('conversation.') && !e.type.startsWith('message.'))) return;
      pending.add(e.conversation_id);
      // Two conversations of one customer became one: the absorbed one leaves the list, and an
      // agent looking at it is taken to the one that goes on.
      const merged = e.merged_conversation_id;
      if (typeof merged === 'string') {
        pending.add(merged);
        if (merged === selectedRef.current) openRef.current(e.conversation_id);
      }
      window.clearTimeout(timer);
      timer = window.setTimeout(flush, 60);
    });
    return () => {
      off();
      window.clearTimeout(timer);
    };
  }, [me]);

  const open = async (id: string) => {
    setSelected(id);
    go('chat');
    const known = items.find((c) => c.id === id);
    if (known) setSelectedConv(known);
    try {
      setSelectedConv(await api<Conversation>('GET', `/conversations/${id}`));
      setItems((old) => old.map((c) => (c.id === id ? { ...c, unread_count: 0 } : c)));
    } catch {
      setSelectedConv(null);
    }
  };

  // A click on a browser notification opens its conversation.
  const openRef = useRef(open);
  openRef.current = open;
  useEffect(() => {
    const onOpen = (e: Event) => openRef.current((e as CustomEvent<string>).detail);
    window.addEventListener('sb-open-conversation', onOpen);
    // Opened from a push notification: /?conversation=ID.
    const asked = new URLSearchParams(location.search).get('conversation');
    if (asked) {
      history.replaceState(history.state, '', location.pathname);
      openRef.current(asked);
    }
    return () => window.removeEventListener('sb-open-conversation', onOpen);
  }, []);

  const refreshSelected = (c: Conversation) => {
    setSelectedConv(c);
    setItems((old) => {
      const rest = old.filter((o) => o.id !== c.id);
      return matches(c, filterRef.current, me) ? [...rest, c].sort(byActivity) : rest;
    });
  };

  const set = (patch: Partial<Filter>) => setFilter((f) => ({ ...f, ...patch }));

  return (
    <div class="conversations" data-view={selectedConv ? view : 'list'}>
      <section class="list-col" aria-label={t('nav.conversations')}>
        <div class="tabs" role="tablist">
          {(['mine', 'unassigned', 'bot', 'all', 'resolved'] as Tab[]).map((tab) => {
            const n = tab === 'mine' ? counts.mine : tab === 'unassigned' ? counts.waiting : 0;
            return (
              <button key={tab} role="tab" aria-selected={filter.tab === tab} data-testid={`tab-${tab}`} class={filter.tab === tab ? 'tab active' : 'tab'} onClick={() => set({ tab })}>
                <span class="tab-label">{t(`tab.${tab}`)}</span>
                {n > 0 && (
                  <span class="count" data-testid={`count-${tab}`} aria-label={t(tab === 'mine' ? 'count.mine' : 'count.waiting', { n })}>
                    {n > 99 ? '99+' : n}
                  </span>
                )}
              </button>
            );
          })}
        </div>
        <div class="filters">
          <input type="search" placeholder={t('filter.search')} aria-label={t('filter.search')} value={filter.q} onInput={(e) => set({ q: e.currentTarget.value })} data-testid="search" />
          <div class="row">
            <select aria-label={t('filter.inbox')} value={filter.inbox_id} onChange={(e) => set({ inbox_id: e.currentTarget.value })} data-testid="filter-inbox">
              <option value="">{t('filter.all_inboxes')}</option>
              {s.inboxes.map((i) => (
                <option value={i.id} key={i.id}>
                  {i.name} ({i.channel})
                </option>
              ))}
            </select>
            <select aria-label={t('filter.tag')} value={filter.tag} onChange={(e) => set({ tag: e.currentTarget.value })} data-testid="filter-tag">
              <option value="">{t('filter.all_tags')}</option>
              {s.tags.map((tg) => (
                <option value={tg.name} key={tg.id}>
                  {tg.name}
                </option>
              ))}
            </select>
          </div>
          {filter.contact_id && (
            <div class="chip">
              {t('filter.contact')} <button class="link" onClick={() => set({ contact_id: '' })}>{t('filter.clear')}</button>
            </div>
          )}
        </div>
        <ConversationList
          items={items}
          selected={selected}
          onOpen={open}
          onMore={() => cursor && !loading && load(filter, true)}
          loading={loading}
        />
      </section>
      <ChatPane key={selected ?? 'none'} conversation={selectedConv} onOpen={open} onChanged={refreshSelected} onBack={back} onCustomer={() => go('side')} />
      {selectedConv && (
        <SidePanel
          key={selectedConv.id}
          conversation={selectedConv}
          onChanged={refreshSelected}
          onFilterContact={(id) => {
            set({ contact_id: id, tab: 'all' });
            home();
          }}
          onOpen={open}
          onBack={back}
        />
      )}
    </div>
  );
}

function ConversationList(props: { items: Conversation[]; selected: string | null; onOpen: (id: string) => void; onMore: () => void; loading: boolean }) {
  const ref = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(600);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const { items } = props;
  // Only the rows in view (plus a margin) are in the DOM: a thousand conversations scroll smoothly.
  const first = Math.max(0, Math.floor(scrollTop / ROW_H) - 5);
  const last = Math.min(items.length, Math.ceil((scrollTop + height) / ROW_H) + 5);
  const visible = useMemo(() => items.slice(first, last), [items, first, last]);

  const onScroll = (e: Event) => {
    const el = e.currentTarget as HTMLDivElement;
    setScrollTop(el.scrollTop);
    if (el.scrollTop + el.clientHeight > el.scrollHeight - ROW_H * 5) props.onMore();
  };
  const onKey = (e: KeyboardEvent) => {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    e.preventDefault();
    const i = items.findIndex((c) => c.id === props.selected);
    const next = items[Math.min(items.length - 1, Math.max(0, i + (e.key === 'ArrowDown' ? 1 : -1)))];
    if (next) {
      props.onOpen(next.id);
      const el = ref.current;
      const idx = items.indexOf(next);
      if (el && (idx * ROW_H < el.scrollTop || (idx + 1) * ROW_H > el.scrollTop + el.clientHeight)) el.scrollTop = idx * ROW_H - el.clientHeight / 2;
    }
  };
  return (
    <div class="list" ref={ref} onScroll={onScroll} tabIndex={0} onKeyDown={onKey} data-testid="conversation-list">
      {items.length === 0 && !props.loading && <p class="empty">{t('list.empty')}</p>}
      <div style={{ height: `${items.length * ROW_H}px`, position: 'relative' }}>
        {visible.map((c, i) => (
          <ListRow key={c.id} c={c} top={(first + i) * ROW_H} selected={c.id === props.selected} onOpen={props.onOpen} />
        ))}
      </div>
    </div>
  );
}

function ListRow({ c, top, selected, onOpen }: { c: Conversation; top: number; selected: boolean; onOpen: (id: string) => void }) {
  return (
    <div
      class={selected ? 'row-item selected' : 'row-item'}
      style={{ top: `${top}px`, height: `${ROW_H}px` }}
      draggable
      onDragStart={(e) => e.dataTransfer?.setData(DRAG_TYPE, c.id)}
      onClick={() => onOpen(c.id)}
      data-testid="conversation-row"
      data-id={c.id}
    >
      <ChannelIcon channel={c.channel} />
      <Avatar url={c.contact_avatar_url} size={28} testid="row-avatar" />
      <div class="body">
        <div class="top">
          <span class="name">{displayName(c)}</span>
          <span class="time">{formatTime(c.last_activity_at)}</span>
        </div>
        <div class="bottom">
          <span class="preview">{c.last_message_preview ?? ''}</span>
          {c.unread_count > 0 && <span class="badge" data-testid="unread">{c.unread_count}</span>}
        </div>
        <div class="meta">
          <span class={`status ${c.status}`}>{t(`conv.${c.status}`)}</span>
          <span class="assignee">{c.assignee_id ? agentName(c.assignee_id) : t('list.unassigned')}</span>
        </div>
      </div>
    </div>
  );
}
