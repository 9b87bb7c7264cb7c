// Switchboard live-chat widget. One <script src=".../widget.js" data-inbox="ID" async></script>
// on any page: a chat bubble and a panel, in a shadow root so the host page's styles and ours never
// touch. No eval, no inline scripts; styles go in through a constructable stylesheet.
// Optional attributes: data-lang="vi|en", data-identifier + data-identifier-hash (signed-in users).
import { blobType, isImage } from '../shared/media';

export {};

type Lang = 'vi' | 'en';
const STR = {
  en: {
    title: 'Chat with us',
    placeholder: 'Type a message…',
    send: 'Send',
    typing: 'typing…',
    offline: 'Reconnecting…',
    failed: 'Not sent — tap to retry',
    start: 'Start chat',
    name: 'Your name',
    email: 'Email',
    phone: 'Phone',
    open: 'Open chat',
    close: 'Close chat',
    error: 'Something went wrong. Please try again.',
  },
  vi: {
    title: 'Trò chuyện với chúng tôi',
    placeholder: 'Nhập tin nhắn…',
    send: 'Gửi',
    typing: 'đang nhập…',
    offline: 'Đang kết nối lại…',
    failed: 'Chưa gửi được — bấm để thử lại',
    start: 'Bắt đầu trò chuyện',
    name: 'Tên của bạn',
    email: 'Email',
    phone: 'Số điện thoại',
    open: 'Mở khung chat',
    close: 'Đóng khung chat',
    error: 'Có lỗi xảy ra. Vui lòng thử lại.',
  },
};

const CSS = `
:host{all:initial}
*{box-sizing:border-box;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;font-size:14px}
.bubble{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;background:#1f6feb;color:#fff;display:grid;place-items:center;cursor:pointer;box-shadow:0 6px 20px rgba(0,0,0,.25);z-index:2147483646}
.panel{position:fixed;right:20px;bottom:88px;width:340px;max-width:calc(100vw - 40px);height:480px;max-height:calc(100vh - 120px);background:#fff;border-radius:14px;box-shadow:0 10px 40px rgba(0,0,0,.25);display:flex;flex-direction:column;overflow:hidden;z-index:2147483647;color:#1c2530}
.panel[hidden]{display:none}
.head{background:#1f6feb;color:#fff;padding:12px 14px}
.head b{display:block;font-size:15px}
.head small{opacity:.85}
.status{background:#fff4e5;color:#8a5300;padding:4px 12px;font-size:12px}
.status[hidden]{display:none}
.msgs{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:6px;background:#f4f6f9}
.m{max-width:80%;padding:7px 11px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word}
.m.customer{align-self:flex-end;background:#1f6feb;color:#fff}
.m.agent{align-self:flex-start;background:#fff;border:1px solid #e2e6ec}
.m.failed{opacity:.6;cursor:pointer}
.m img{max-width:220px;border-radius:8px;display:block}
.m a{color:inherit}
.typing{color:#6b7685;font-style:italic;font-size:12px;padding:0 12px 4px;background:#f4f6f9}
.typing[hidden]{display:none}
form.compose{display:flex;gap:6px;padding:8px;border-top:1px solid #e2e6ec}
textarea{flex:1;resize:none;border:1px solid #e2e6ec;border-radius:8px;padding:7px;height:40px}
button.send{background:#1f6feb;color:#fff;border:0;border-radius:8px;padding:0 12px;cursor:pointer}
form.pre{padding:14px;display:flex;flex-direction:column;gap:8px}
form.pre input{border:1px solid #e2e6ec;border-radius:8px;padding:8px}
`;

interface Msg {
  id: string;
  sender_kind: string;
  text: string;
  attachments?: { id: string; filename: string; content_type: string; url: string }[];
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text) e.textContent = text;
  return e;
}

function uuid(): string {
  return crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2);
}

function start(script: HTMLScriptElement) {
  const inbox = script.dataset.inbox;
  if (!inbox) return;
  const base = new URL(script.src).origin;
  const lang: Lang = script.dataset.lang === 'vi' || script.dataset.lang === 'en' ? script.dataset.lang : navigator.language.toLowerCase().startsWith('vi') ? 'vi' : 'en';
  const s = STR[lang];
  const storeKey = `sb_widget_${inbox}`;
  let token = localStorage.getItem(storeKey);
  let config: { name: string; greeting?: string | null; prechat_fields: string[] } | null = null;
  let ws: WebSocket | null = null;
  let retry = 0;
  const known = new Set<string>();
  const inflight = new Set<Promise<unknown>>();

  const host = el('div');
  host.id = 'switchboard-widget';
  const root = host.attachShadow({ mode: 'open' });
  try {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } catch {
    root.appendChild(el('style', undefined, CSS));
  }
  const bubble = el('button', 'bubble');
  // A static SVG (no emoji font needed).
  bubble.innerHTML = '<svg width="26" height="26" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><path d="M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z"/></svg>';
  bubble.setAttribute('aria-label', s.open);
  const panel = el('div', 'panel');
  panel.hidden = true;
  panel.setAttribute('role', 'dialog');
  const head = el('div', 'head');
  const title = el('b', undefined, s.title);
  const sub = el('small');
  head.append(title, sub);
  const status = el('div', 'status', s.offline);
  status.hidden = true;
  const msgs = el('div', 'msgs');
  const typing = el('div', 'typing', s.typing);
  typing.hidden = true;
  const compose = el('form', 'compose');
  const input = el('textarea');
  input.placeholder = s.placeholder;
  input.setAttribute('aria-label', s.placeholder);
  const send = el('button', 'send', s.send);
  send.type = 'submit';
  compose.append(input, send);
  panel.append(head, status, msgs, typing, compose);
  root.append(panel, bubble);
  document.body.appendChild(host);

  const api = async (method: string, path: string, body?: unknown) => {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    // keepalive: a message sent just before the visitor navigates away still arrives.
    const r = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), keepalive: method === 'POST' });
    const j = await r.json().catch(() => null);
    if (!r.ok) throw Object.assign(new Error(j?.error?.message ?? 'error'), { status: r.status, code: j?.error?.code });
    return j;
  };

  const scrollDown = () => {
    msgs.scrollTop = msgs.scrollHeight;
  };

  const render = (m: Msg, node?: HTMLElement) => {
    const div = node ?? el('div', `m ${m.sender_kind === 'customer' ? 'customer' : 'agent'}`);
    div.textContent = '';
    if (m.id) {
      div.dataset.id = m.id;
      known.add(m.id);
    }
    const att = m.attachments ?? [];
    for (const a of att) {
      const image = isImage(a.content_type);
      const link = el('a', undefined, image ? '' : `📎 ${a.filename}`);
      link.href = '#';
      if (image) link.appendChild(el('img'));
      // Files are fetched with the visitor token, never put in a URL.
      fetch(base + a.url, { headers: { authorization: `Bearer ${token}` } })
        .then((r) => r.blob())
        .then((b) => {
          // The blob: URL lives on the merchant's origin: it carries a picture's type or none.
          const url = URL.createObjectURL(b.slice(0, b.size, blobType(a.content_type)));
          link.href = url;
          link.download = a.filename;
          const img = link.querySelector('img');
          if (img) img.src = url;
        })
        .catch(() => undefined);
      div.appendChild(link);
    }
    if (!att.length || m.text !== att[0]?.filename) div.appendChild(document.createTextNode(m.text));
    if (!node) msgs.appendChild(div);
    scrollDown();
    return div;
  };

  const loadThread = async () => {
    if (!token) return;
    const page = await api('GET', '/widget/v1/messages');
    msgs.textContent = '';
    known.clear();
    if (config?.greeting) msgs.appendChild(el('div', 'm agent', config.greeting));
    for (const m of page.items as Msg[]) render(m);
  };

  const connect = () => {
    if (!token || ws) return;
    const sock = new WebSocket(`${base.replace(/^http/, 'ws')}/widget/v1/ws?token=${encodeURIComponent(token)}`);
    ws = sock;
    let typingTimer: number | undefined;
    sock.onopen = () => {
      status.hidden = true;
      if (retry > 0) loadThread().catch(() => undefined); // catch up on what came while offline
      retry = 0;
    };
    sock.onmessage = async (ev) => {
      const e = JSON.parse(ev.data);
      if (e.type === 'typing') {
        typing.hidden = false;
        window.clearTimeout(typingTimer);
        typingTimer = window.setTimeout(() => (typing.hidden = true), 4000);
        return;
      }
      if (e.type !== 'message.created' || !e.message) return;
      const m = e.message as Msg;
      if (m.sender_kind === 'customer') await Promise.all([...inflight]);
      if (known.has(m.id)) return;
      typing.hidden = true;
      if ((m as { kind?: string }).kind === 'media') loadThread().catch(() => undefined);
      else render(m);
    };
    sock.onclose = () => {
      ws = null;
      status.hidden = false;
      const delay = Math.min(15000, 500 * 2 ** retry++);
      window.setTimeout(connect, delay);
    };
  };

  const ensureSession = async (fields: Record<string, string> = {}) => {
    if (token) return;
    const body: Record<string, string> = { inbox_id: inbox, ...fields };
    if (script.dataset.identifier) {
      body.identifier = script.dataset.identifier;
      body.identifier_hash = script.dataset.identifierHash ?? '';
    }
    const r = await api('POST', '/widget/v1/sessions', body);
    token = r.token as string;
    localStorage.setItem(storeKey, token);
    connect();
  };

  const deliver = async (text: string, clientId: string, node: HTMLElement) => {
    const p = (async () => {
      await ensureSession();
      const r = await api('POST', '/widget/v1/messages', { text, client_message_id: clientId });
      node.dataset.id = r.message.id;
      known.add(r.message.id);
    })();
    inflight.add(p);
    try {
      await p;
      node.classList.remove('failed');
      node.title = '';
    } catch {
      node.classList.add('failed');
      node.title = s.failed;
      node.onclick = () => deliver(text, clientId, node);
    } finally {
      inflight.delete(p);
    }
  };

  let lastTyping = 0;
  input.addEventListener('input', () => {
    const now = Date.now();
    if (ws && ws.readyState === WebSocket.OPEN && now - lastTyping > 2000) {
      lastTyping = now;
      ws.send('{"type":"typing"}');
    }
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      compose.requestSubmit();
    }
  });
  compose.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    const node = render({ id: '', sender_kind: 'customer', text });
    deliver(text, uuid(), node);
  });

  const prechat = (fields: string[]) => {
    const form = el('form', 'pre');
    const inputs: Record<string, HTMLInputElement> = {};
    for (const f of fields) {
      const i = el('input');
      i.name = f;
      i.placeholder = (s as Record<string, string>)[f] ?? f;
      i.required = f === 'name';
      if (f === 'email') i.type = 'email';
      inputs[f] = i;
      form.appendChild(i);
    }
    const go = el('button', 'send', s.start);
    go.type = 'submit';
    form.appendChild(go);
    compose.hidden = true;
    msgs.appendChild(form);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const values: Record<string, string> = {};
      for (const [k, i] of Object.entries(inputs)) if (i.value.trim()) values[k] = i.value.trim();
      try {
        await ensureSession(values);
        form.remove();
        compose.hidden = false;
        await loadThread();
        input.focus();
      } catch {
        form.appendChild(el('div', undefined, s.error));
      }
    });
  };

  let opened = false;
  bubble.addEventListener('click', async () => {
    panel.hidden = !panel.hidden;
    bubble.setAttribute('aria-label', panel.hidden ? s.open : s.close);
    if (panel.hidden || opened) return;
    opened = true;
    try {
      config = await api('GET', `/widget/v1/inboxes/${inbox}`);
      sub.textContent = config?.name ?? '';
      if (token) {
        await loadThread().catch((err: { status?: number }) => {
          // A token the server no longer accepts: start over as a new visitor.
          if (err.status === 401) {
            token = null;
            localStorage.removeItem(storeKey);
          }
        });
        connect();
      }
      if (!token && config && config.prechat_fields.length) prechat(config.prechat_fields);
      else if (!token && config?.greeting) msgs.appendChild(el('div', 'm agent', config.greeting));
      input.focus();
    } catch {
      msgs.appendChild(el('div', 'm agent', s.error));
    }
  });
}

const current = document.currentScript as HTMLScriptElement | null;
if (current) {
  if (document.body) start(current);
  else document.addEventListener('DOMContentLoaded', () => start(current));
}
