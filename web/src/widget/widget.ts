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
    bad_name: 'Please check your name.',
    bad_email: 'Please check your email address.',
    bad_phone: 'Please check your phone number (8 to 15 digits).',
    prechat: 'Before we start, tell us who you are.',
    unread: '{n} new',
    attach: 'Send a picture or file',
    sending: 'Sending…',
    file_type: 'Only pictures, videos, sound and PDF files can be sent.',
    file_big: 'This file is too large.',
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
    bad_name: 'Bạn kiểm tra lại tên giúp shop nhé.',
    bad_email: 'Bạn kiểm tra lại địa chỉ email giúp shop nhé.',
    bad_phone: 'Bạn kiểm tra lại số điện thoại (8 đến 15 chữ số) nhé.',
    prechat: 'Trước khi bắt đầu, bạn cho shop biết vài thông tin nhé.',
    unread: '{n} tin mới',
    attach: 'Gửi ảnh hoặc tệp',
    sending: 'Đang gửi…',
    file_type: 'Chỉ gửi được ảnh, video, âm thanh và tệp PDF.',
    file_big: 'Tệp này quá lớn.',
  },
};

const CSS = `
:host{all:initial}
[hidden]{display:none!important}
*{box-sizing:border-box;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;font-size:14px}
.bubble{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;background:#1a5fd0;color:#fff;display:grid;place-items:center;cursor:pointer;box-shadow:0 6px 20px rgba(0,0,0,.25);z-index:2147483646}
.badge{position:absolute;top:-4px;right:-4px;min-width:22px;height:22px;padding:0 6px;border-radius:11px;background:#c62828;color:#fff;font-size:12px;font-weight:700;line-height:22px;text-align:center;border:2px solid #fff}
.panel{position:fixed;right:20px;bottom:88px;width:340px;max-width:calc(100vw - 40px);height:480px;max-height:calc(100vh - 120px);background:#fff;border-radius:14px;box-shadow:0 10px 40px rgba(0,0,0,.25);display:flex;flex-direction:column;overflow:hidden;z-index:2147483647;color:#1c2530}
.head{background:#1a5fd0;color:#fff;padding:12px 14px}
.head b{display:block;font-size:15px}
.head small{color:#fff}
.status{background:#fff4e5;color:#7a4900;padding:4px 12px;font-size:12px}
.msgs{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:6px;background:#f4f6f9}
.m{max-width:80%;padding:7px 11px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word}
.m.customer{align-self:flex-end;background:#1a5fd0;color:#fff}
.m.agent{align-self:flex-start;background:#fff;border:1px solid #e2e6ec}
.m.failed{opacity:.6;cursor:pointer}
.m img{max-width:220px;border-radius:8px;display:block}
.m a{color:inherit}
.typing{color:#5b6573;font-style:italic;font-size:12px;padding:0 12px 4px;background:#f4f6f9}
form.compose{display:flex;gap:6px;padding:8px;border-top:1px solid #e2e6ec}
textarea{flex:1;resize:none;border:1px solid #8a94a3;border-radius:8px;padding:7px;height:44px;color:#1c2530}
button.clip{flex:none;width:44px;min-height:44px;border:1px solid #8a94a3;border-radius:8px;background:#fff;color:#1c2530;cursor:pointer;display:grid;place-items:center}
button.send{flex:none;min-width:64px;min-height:44px;background:#1a5fd0;color:#fff;border:0;border-radius:8px;padding:0 14px;cursor:pointer;font-weight:600}
form.pre{padding:4px 2px;display:flex;flex-direction:column;gap:10px}
form.pre p{margin:0;color:#1c2530}
form.pre label{display:flex;flex-direction:column;gap:4px;color:#414b59;font-size:12px}
form.pre input{border:1px solid #8a94a3;border-radius:8px;padding:10px;min-height:44px;color:#1c2530;background:#fff}
form.pre button.send{width:100%;padding:10px 14px}
.err{color:#b3261e}
@media (max-width:480px){.panel{right:0;bottom:0;width:100vw;max-width:100vw;height:100%;max-height:100%;border-radius:0}.bubble{right:14px;bottom:14px}}
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
  bubble.setAttribute('aria-expanded', 'false');
  const badge = el('span', 'badge');
  badge.hidden = true;
  badge.setAttribute('aria-hidden', 'true');
  bubble.appendChild(badge);
  const panel = el('div', 'panel');
  panel.hidden = true;
  panel.setAttribute('role', 'dialog');
  panel.setAttribute('aria-label', s.title);
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
  const clip = el('button', 'clip');
  clip.type = 'button';
  clip.innerHTML = '<svg width="20" height="20" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><path d="m21.4 11.1-9.2 9.2a6 6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2a2 2 0 0 1-2.8-2.8l8.5-8.5"/></svg>';
  clip.title = s.attach;
  clip.setAttribute('aria-label', s.attach);
  const picker = el('input');
  picker.type = 'file';
  picker.multiple = true;
  picker.hidden = true;
  picker.accept = 'image/*,video/*,audio/*,application/pdf';
  compose.append(clip, picker, input, send);
  // Nothing can be written until the inbox's settings say whether a pre-chat form comes first.
  compose.hidden = true;
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
    if (!r.ok) throw Object.assign(new Error(j?.error?.message ?? 'error'), { status: r.status, code: j?.error?.code, field: j?.error?.field });
    return j;
  };

  // Replies that came while the panel was closed: a count on the bubble and a short chime.
  let unreadCount = 0;
  const unread = (n: number) => {
    unreadCount = n === 0 ? 0 : unreadCount + n;
    badge.hidden = unreadCount === 0;
    badge.textContent = String(unreadCount);
    bubble.setAttribute('aria-label', unreadCount ? `${s.open} (${s.unread.replace('{n}', String(unreadCount))})` : panel.hidden ? s.open : s.close);
    if (n > 0) chime();
  };
  let audio: AudioContext | null = null;
  const chime = () => {
    try {
      audio ??= new AudioContext();
      const ctx = audio;
      ctx
        .resume()
        .then(() => {
          if (ctx.state !== 'running') return;
          const osc = ctx.createOscillator();
          const gain = ctx.createGain();
          const t0 = ctx.currentTime;
          osc.frequency.value = 988;
          gain.gain.setValueAtTime(0.0001, t0);
          gain.gain.exponentialRampToValueAtTime(0.15, t0 + 0.02);
          gain.gain.exponentialRampToValueAtTime(0.0001, t0 + 0.25);
          osc.connect(gain).connect(ctx.destination);
          osc.start(t0);
          osc.stop(t0 + 0.3);
          host.dispatchEvent(new CustomEvent('switchboard:sound', { bubbles: true }));
        })
        .catch(() => undefined);
    } catch {
      /* no audio here */
    }
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
      if (m.sender_kind !== 'customer' && panel.hidden) unread(1);
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

  // Files go up one by one as their raw bytes; the server decides what they are from the bytes.
  const upload = async (f: File) => {
    const node = render({ id: '', sender_kind: 'customer', text: `${f.name} · ${s.sending}` });
    try {
      await ensureSession();
      const q = `filename=${encodeURIComponent(f.name)}&client_message_id=${uuid()}`;
      const r = await fetch(`${base}/widget/v1/attachments?${q}`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: f });
      const j = await r.json().catch(() => null);
      if (!r.ok) throw Object.assign(new Error('upload'), { status: r.status, code: j?.error?.code });
      render(j.message, node);
    } catch (e) {
      const { status, code } = e as { status?: number; code?: string };
      node.classList.add('failed');
      node.textContent = `${f.name} — ${code === 'file_type_not_supported' ? s.file_type : status === 413 ? s.file_big : s.error}`;
    }
  };
  clip.addEventListener('click', () => picker.click());
  picker.addEventListener('change', () => {
    const files = Array.from(picker.files ?? []);
    picker.value = '';
    (async () => {
      for (const f of files) await upload(f);
    })();
  });

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

  // The pre-chat form comes first: the composer stays hidden until the session exists with the
  // visitor's answers (so the contact carries their name from the first message). What they type
  // is kept in this browser until then, even across a reload.
  const prechatKey = `${storeKey}_prechat`;
  const prechat = (fields: string[]) => {
    const form = el('form', 'pre');
    form.noValidate = false;
    form.appendChild(el('p', undefined, s.prechat));
    let saved: Record<string, string> = {};
    try {
      saved = JSON.parse(localStorage.getItem(prechatKey) ?? '{}');
    } catch {
      saved = {};
    }
    const inputs: Record<string, HTMLInputElement> = {};
    for (const f of fields) {
      const label = el('label', undefined, (s as Record<string, string>)[f] ?? f);
      const i = el('input');
      i.name = f;
      i.required = f === 'name';
      i.autocomplete = f === 'name' ? 'name' : f === 'email' ? 'email' : f === 'phone' ? 'tel' : 'on';
      if (f === 'email') i.type = 'email';
      if (f === 'phone') i.type = 'tel';
      i.value = saved[f] ?? '';
      i.addEventListener('input', () => {
        saved[f] = i.value;
        localStorage.setItem(prechatKey, JSON.stringify(saved));
      });
      inputs[f] = i;
      label.appendChild(i);
      form.appendChild(label);
    }
    const go = el('button', 'send', s.start);
    go.type = 'submit';
    form.appendChild(go);
    const err = el('div', 'err');
    err.setAttribute('role', 'alert');
    form.appendChild(err);
    compose.hidden = true;
    msgs.appendChild(form);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      err.textContent = '';
      for (const i of Object.values(inputs)) i.removeAttribute('aria-invalid');
      const values: Record<string, string> = {};
      for (const [k, i] of Object.entries(inputs)) if (i.value.trim()) values[k] = i.value.trim();
      go.disabled = true;
      try {
        await ensureSession(values);
        localStorage.removeItem(prechatKey);
        form.remove();
        compose.hidden = false;
        await loadThread();
        input.focus();
      } catch (e) {
        // A refused value is said beside its field.
        const f = (e as { field?: string }).field ?? '';
        const bad = inputs[f];
        err.textContent = (bad && (s as Record<string, string>)[`bad_${f}`]) || s.error;
        if (bad) {
          bad.setAttribute('aria-invalid', 'true');
          bad.parentElement?.after(err);
          bad.focus();
        }
      } finally {
        go.disabled = false;
      }
    });
    (Object.values(inputs)[0] ?? go).focus();
  };

  let opened = false;
  bubble.addEventListener('click', async () => {
    panel.hidden = !panel.hidden;
    bubble.setAttribute('aria-expanded', String(!panel.hidden));
    if (!panel.hidden) unread(0);
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
      else {
        if (!token && config?.greeting) msgs.appendChild(el('div', 'm agent', config.greeting));
        compose.hidden = false;
        input.focus();
      }
    } catch {
      msgs.appendChild(el('div', 'm agent', s.error));
    }
  });

  // A returning visitor hears the shop's replies even with the panel closed.
  if (token) connect();
}

const current = document.currentScript as HTMLScriptElement | null;
if (current) {
  if (document.body) start(current);
  else document.addEventListener('DOMContentLoaded', () => start(current));
}
