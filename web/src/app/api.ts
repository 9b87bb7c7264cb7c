// The agent API over fetch: cookie session + CSRF header, one error shape.

export type Role = 'admin' | 'supervisor' | 'agent';
export type Status = 'bot' | 'pending' | 'open' | 'resolved';

export interface Agent {
  id: string;
  email: string;
  name: string;
  role: Role;
  capacity: number | null;
  active: boolean;
  online?: boolean;
  presence?: Presence;
}

export type Presence = 'online' | 'away' | 'offline';

export interface TimeRange {
  start: string;
  end: string;
}

export interface RoutingRules {
  strategy: 'round_robin' | 'least_busy' | 'self_claim';
  include_offline: boolean;
  sticky: boolean;
  agent_ids: string[];
  default_capacity: number | null;
  reply_sla_minutes: number | null;
  auto_close: { customer_silence_minutes: number | null; agent_silence_minutes: number | null; closing_message: string | null } | null;
  offline_release_minutes: number | null;
  business_hours: {
    utc_offset_minutes: number;
    days: Record<string, TimeRange[]>;
    holidays: string[];
    pause_routing: boolean;
    auto_reply: string | null;
  } | null;
}

export interface Timer {
  kind: 'reply_sla' | 'customer_silence' | 'agent_silence' | 'offline_release';
  due_at: number;
  agent_id: string | null;
}

export interface Me extends Agent {
  inbox_ids: string[];
  csrf_token: string;
  limits?: {
    max_upload_bytes: number;
    /** Per channel: the largest file of each kind it sends (`null`: not that kind), the longest caption. */
    media?: Record<string, Record<'image' | 'video' | 'audio' | 'document', number | null> & { caption: number | null }>;
  };
}

export interface Inbox {
  id: string;
  name: string;
  channel: string;
  settings: Record<string, unknown>;
  widget_snippet?: string;
  /** Admins: what to paste at the provider. */
  setup?: { webhook_url: string; verify_token?: string; events: string[]; automatic: boolean };
}

export interface Conversation {
  id: string;
  inbox_id: string;
  contact_id: string;
  status: Status;
  assignee_id: string | null;
  last_assignee_id: string | null;
  participants: string[];
  tags: string[];
  last_activity_at: number;
  last_customer_message_at: number | null;
  contact_name: string | null;
  /** The customer's picture: our copy (`/api/v1/contacts/…/avatar?v=…`) or the provider's https URL. */
  contact_avatar_url?: string | null;
  channel: string;
  inbox_name: string;
  last_message_preview: string | null;
  unread_count: number;
  version: number;
}

export interface Attachment {
  id: string;
  filename: string;
  content_type: string;
  size_bytes: number;
  /** Our copy (none while a customer's file is not downloaded). */
  url: string | null;
  /** A customer's file: `pending` (downloading), `ready`, `failed` (retry), `remote` (Instagram). */
  state?: 'pending' | 'ready' | 'failed' | 'remote';
  /** A customer's file: image, sticker, video, audio or file. */
  kind?: string;
  thumbnail_url?: string;
  /** Instagram: the provider's URL (it expires; the bytes are never kept). */
  remote_url?: string;
  /** Why the download failed. */
  error?: string | null;
}

export interface Message {
  id: string;
  conversation_id: string;
  direction: 'inbound' | 'outbound';
  sender_kind: 'customer' | 'agent' | 'bot' | 'system';
  sender_agent_id: string | null;
  kind: 'text' | 'media' | 'comment' | 'note' | 'agent_to_agent' | 'system';
  text: string;
  private: boolean;
  delivery_status: string;
  failure_reason: string | null;
  created_at: number;
  attachments?: Attachment[];
  meta?: MessageMeta;
  messaging_type?: string | null;
  tag?: string | null;
}

/** What a provider told us about a message (Messenger, Instagram, …). */
export interface MessageMeta {
  /** The provider's own attachments (Zalo's locations carry `coordinates`). */
  attachments?: { kind?: string; type?: string; url: string | null; coordinates?: { latitude?: string | number; longitude?: string | number } }[];
  comment?: {
    id?: string;
    post_id?: string | null;
    post_link?: string | null;
    liked?: boolean;
    hidden?: boolean;
    removed?: boolean;
    /** What comment rules did, by action: status, the rule, why. */
    auto?: Record<string, { status: string; rule?: string; because?: string[]; result?: string | null; at?: number }>;
  };
  /** By who reacted: an emoji (older rows) or `{emoji, reaction, at}`. */
  reactions?: Record<string, string | { emoji?: string | null; reaction?: string | null }>;
  /** How many times the customer edited it (older rows: `true`). */
  edited?: boolean | number;
  deleted?: boolean;
  /** Where a forwarded message came from (Telegram), or WhatsApp's `context.forwarded`. */
  forwarded_from?: string;
  context?: { forwarded?: boolean; frequently_forwarded?: boolean };
  /** The message this one answers: ours when we have it, and a short quote of it. */
  reply_to?: string;
  reply_to_message_id?: string;
  reply_to_text?: string;
  /** A story it answers, mentions or shares (Instagram, Telegram). */
  story?: { id?: string | number | null; url?: string | null; mention?: boolean; chat?: string | null };
  /** A shared location or venue. */
  location?: { latitude?: number | null; longitude?: number | null; name?: string | null; address?: string | null };
  /** Contact cards (WhatsApp). */
  contacts?: { name?: { formatted_name?: string }; phones?: { phone?: string }[] }[];
  /** A contact card (Telegram). */
  contact?: { name?: string | null; phone?: string | null };
  quick_reply?: { payload?: string };
  postback?: { title?: string; payload?: string };
}

/** The messaging-window answer for a conversation (`GET /conversations/{id}/policy`). */
export interface Policy {
  mode: 'open' | 'human_agent' | 'closed' | 'no_window' | string;
  window_ends_at: number | null;
  human_agent_until: number | null;
  reason: string | null;
  can_message?: boolean;
  open_in_provider_app_url?: string | null;
  channel: string;
  /** Zalo: the next message uses paid quota. */
  paid?: boolean;
  quota?: { free_left?: number; free_per_customer_message?: number; free_until?: number | null; sent_since_customer?: number } | null;
  unreachable?: string | null;
}

export interface Template {
  name: string;
  language: string;
  category: string;
  status: string;
  header: string | null;
  body: string | null;
  footer: string | null;
  parameters: { header_text: string[]; header_media: string | null; body: string[]; buttons: [number, string[]][]; format: string };
}

export interface UsageCategory {
  category: string;
  conversations: number;
  messages: number;
  billable: number;
  free: number;
  cost: string;
  unpriced: number;
}

export interface Usage {
  month: string;
  currency: string;
  models: string[];
  windows_opened: number;
  total_cost: string;
  unpriced: number;
  categories: UsageCategory[];
}

export interface Contact {
  id: string;
  name: string | null;
  phone: string | null;
  email: string | null;
  notes: string | null;
  avatar_url?: string | null;
  /** `agent`: typed by an agent (a synced name never replaces it); `channel`: from the channel. */
  name_source?: 'agent' | 'channel' | null;
  /** A phone or email the customer wrote that differs from these (one click to use). */
  suggested?: { phone?: string; email?: string };
}

export interface QuickReply {
  id: string;
  code: string;
  text: string;
  /** Saved-media library files sent with the text. */
  media?: string[];
}

export interface LibraryItem {
  id: string;
  name: string;
  tags: string[];
  filename: string;
  content_type: string;
  size_bytes: number;
  url: string;
  created_at: number;
}

export interface Tag {
  id: string;
  name: string;
}

export interface HistoryEntry {
  id: string;
  kind: string;
  actor_id: string | null;
  detail: Record<string, unknown> | null;
  created_at: number;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public field?: string,
    public extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

function csrf(): string {
  const m = document.cookie.match(/(?:^|;\s*)sb_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : '';
}

async function parse<T>(resp: Response): Promise<T> {
  const text = await resp.text();
  const body = text ? JSON.parse(text) : null;
  if (!resp.ok) {
    const e = body?.error ?? {};
    throw new ApiError(resp.status, e.code ?? 'http_' + resp.status, e.message ?? resp.statusText, e.field, e);
  }
  return body as T;
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { 'x-csrf-token': csrf() };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let resp: Response;
  try {
    resp = await fetch('/api/v1' + path, {
      method,
      credentials: 'same-origin',
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'network', 'network error');
  }
  return parse<T>(resp);
}

/**
 * POSTs a file as the raw body with upload progress (0..1): fetch has no upload progress, so this
 * one request goes through XMLHttpRequest.
 */
export function sendFile<T>(path: string, file: Blob, onProgress?: (done: number) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open('POST', '/api/v1' + path);
    x.withCredentials = true;
    x.setRequestHeader('x-csrf-token', csrf());
    x.setRequestHeader('content-type', file.type || 'application/octet-stream');
    x.upload.onprogress = (e) => e.lengthComputable && onProgress?.(e.loaded / e.total);
    x.onload = () => {
      let body: { error?: { code?: string; message?: string; field?: string } } | null = null;
      try {
        body = x.responseText ? JSON.parse(x.responseText) : null;
      } catch {
        body = null;
      }
      if (x.status >= 200 && x.status < 300) resolve(body as T);
      else {
        const e = body?.error ?? {};
        reject(new ApiError(x.status, e.code ?? 'http_' + x.status, e.message ?? x.statusText, e.field, e));
      }
    };
    x.onerror = () => reject(new ApiError(0, 'network', 'network error'));
    x.send(file);
  });
}

export function query(params: Record<string, string | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
}
