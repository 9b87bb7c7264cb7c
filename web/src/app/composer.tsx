// The composer: Enter sends, Shift+Enter breaks the line; `/code` opens quick replies (↑/↓, Enter,
// Esc); reply / private note / to-colleagues modes; emoji. Files come in by the clip, drag and
// drop, pasting, the saved-media library or a quick reply that carries them: they wait in a tray
// with their previews (each can be taken out) and go with Send, one after the other, each with its
// progress. One file and a text: the text is its caption; several: the text follows them.

import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, Conversation, LibraryItem, sendFile } from './api';
import { errorText, fieldErrorText, formatBytes, t } from './i18n';
import { realtime } from './realtime';
import { useShared } from './store';
import { Clip, Images, Smile } from './icons';
import { LibraryPicker, loadLibrary, Thumb } from './library';
import { isImage } from '../shared/media';

/** A file waiting to be sent: from this computer, or from the library. */
interface Pending {
  key: number;
  name: string;
  size: number;
  file?: File;
  item?: LibraryItem;
  /** A blob: URL of a picture from this computer, for its preview. */
  preview?: string;
  progress?: number;
  error?: string;
}
let nextKey = 1;

type Mode = 'reply' | 'note' | 'agent_to_agent';

const EMOJI = ['😀', '😊', '😍', '🙏', '👍', '👌', '🎉', '❤️', '😢', '😅', '🤔', '👋', '✅', '📦', '🚚', '💰', '🎁', '⭐', '🔥', '😉'];
const DEFAULT_LIMIT = 20 * 1024 * 1024;

/**
 * `enabled`: a reply to the customer may be written now (the agent holds the conversation and the
 * channel's window allows it). Notes and messages to colleagues need neither (`privateEnabled`).
 */
export function Composer({
  c,
  enabled: replyEnabled,
  privateEnabled = true,
  extra = {},
  onRefused,
}: {
  c: Conversation;
  enabled: boolean;
  privateEnabled?: boolean;
  extra?: Record<string, unknown>;
  onRefused?: () => void;
}) {
  const s = useShared();
  const [text, setText] = useState('');
  const [mode, setMode] = useState<Mode>('reply');
  const enabled = mode === 'reply' ? replyEnabled : privateEnabled;
  const [error, setError] = useState('');
  const [emoji, setEmoji] = useState(false);
  const [qrIndex, setQrIndex] = useState(0);
  const [qrClosed, setQrClosed] = useState(false);
  const [dropping, setDropping] = useState(false);
  const [tray, setTray] = useState<Pending[]>([]);
  const [picking, setPicking] = useState(false);
  const trayRef = useRef<Pending[]>([]);
  trayRef.current = tray;
  // Previews of files never sent are let go with the composer.
  useEffect(() => () => trayRef.current.forEach((p) => p.preview && URL.revokeObjectURL(p.preview)), []);
  const area = useRef<HTMLTextAreaElement>(null);
  const fileInput = useRef<HTMLInputElement>(null);
  const lastTyping = useRef(0);
  const limit = s.me?.limits?.max_upload_bytes ?? DEFAULT_LIMIT;
  const touch = window.matchMedia('(pointer: coarse)').matches;

  // Quick replies: the text is `/` + the start of a code.
  const slash = /^\/([a-z0-9_-]*)$/i.exec(text);
  const qrOpen = enabled && !!slash && !qrClosed;
  const matchesQr = qrOpen ? s.quickReplies.filter((q) => q.code.startsWith(slash![1].toLowerCase())) : [];

  const sendText = async (sent: string) => {
    try {
      await api('POST', `/conversations/${c.id}/messages`, mode === 'reply' ? { text: sent, kind: mode, ...extra } : { text: sent, kind: mode });
      return true;
    } catch (e) {
      setText((now) => (now === '' ? sent : now));
      if (e instanceof ApiError) {
        setError(e.field === 'text' ? fieldErrorText(e) : errorText(e.code, e.message));
        if (e.code === 'window_closed' || e.code === 'human_agent_confirmation_required') onRefused?.();
      }
      return false;
    }
  };

  const update = (key: number, change: Partial<Pending>) => setTray((ts) => ts.map((p) => (p.key === key ? { ...p, ...change } : p)));
  const drop = (key: number) =>
    setTray((ts) => {
      const gone = ts.find((p) => p.key === key);
      if (gone?.preview) URL.revokeObjectURL(gone.preview);
      return ts.filter((p) => p.key !== key);
    });

  /** Sends one waiting file; false (and the reason beside it) when it was refused. */
  const sendOne = async (p: Pending, caption?: string) => {
    update(p.key, { progress: 0, error: undefined });
    try {
      if (p.file) {
        const q = new URLSearchParams({ filename: p.name });
        if (caption) q.set('caption', caption);
        await sendFile(`/conversations/${c.id}/attachments?${q}`, p.file, (done) => update(p.key, { progress: done }));
      } else if (p.item) {
        await api('POST', `/conversations/${c.id}/attachments/library`, { library_id: p.item.id, caption });
      }
      drop(p.key);
      return true;
    } catch (e) {
      const why = e instanceof ApiError ? errorText(e.code, e.message) : String(e);
      update(p.key, { progress: undefined, error: why });
      setError(why);
      return false;
    }
  };

  const send = async () => {
    const body = text.trim();
    const files = mode === 'reply' ? tray : [];
    if ((!body && files.length === 0) || !enabled) return;
    setError('');
    // Clear at once (the message shows up over the socket); put the text back if the send fails.
    const sent = text;
    setText('');
    setQrClosed(false);
    // One file: the text is its caption. Several: the files go first, then the text.
    const caption = files.length === 1 && body ? sent : undefined;
    for (const p of files) {
      if (!(await sendOne(p, caption))) {
        setText((now) => (now === '' ? sent : now));
        return;
      }
    }
    if (body && !caption) await sendText(sent);
  };

  const addFiles = (files: File[]) => {
    setError('');
    const fits = files.filter((f) => {
      if (f.size <= limit) return true;
      setError(t('composer.too_big', { name: f.name, size: formatBytes(limit) }));
      return false;
    });
    setTray((ts) => [
      ...ts,
      ...fits.map((f) => ({ key: nextKey++, name: f.name, size: f.size, file: f, preview: isImage(f.type) ? URL.createObjectURL(f) : undefined })),
    ]);
  };
  const addItems = (items: LibraryItem[]) => setTray((ts) => [...ts, ...items.map((m) => ({ key: nextKey++, name: m.filename, size: m.size_bytes, item: m }))]);

  const onPaste = (e: ClipboardEvent) => {
    const files = Array.from(e.clipboardData?.files ?? []);
    if (files.length === 0 || !replyEnabled || mode !== 'reply') return;
    e.preventDefault();
    // A screenshot pasted from the clipboard is called image.png: name it for what it is.
    addFiles(files.map((f) => (f.name && f.name !== 'image.png' ? f : new File([f], `${t('composer.pasted')} ${new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-')}.${f.type.split('/')[1] ?? 'png'}`, { type: f.type }))));
  };

  const pick = (i: number) => {
    const q = matchesQr[i];
    if (!q) return;
    setText(q.text);
    // Its files from the library join the message (those removed from the library meanwhile do not).
    if (q.media?.length && mode === 'reply')
      loadLibrary()
        .then((all) => addItems(q.media!.map((id) => all.find((m) => m.id === id)).filter((m): m is LibraryItem => !!m)))
        .catch(() => undefined);
    setQrIndex(0);
    setQrClosed(true);
    area.current?.focus();
  };

  const onKeyDown = (e: KeyboardEvent) => {
    if (qrOpen && matchesQr.length > 0) {
      if (e.key === 'ArrowDown') {
        e.preventDefault();
        setQrIndex((i) => (i + 1) % matchesQr.length);
        return;
      }
      if (e.key === 'ArrowUp') {
        e.preventDefault();
        setQrIndex((i) => (i - 1 + matchesQr.length) % matchesQr.length);
        return;
      }
      if (e.key === 'Enter' || e.key === 'Tab') {
        e.preventDefault();
        pick(Math.min(qrIndex, matchesQr.length - 1));
        return;
      }
    }
    if (qrOpen && e.key === 'Escape') {
      e.preventDefault();
      setQrClosed(true);
      return;
    }
    // On a touch screen Enter is the keyboard's new line; the Send button sends.
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !touch) {
      e.preventDefault();
      send();
    }
  };

  const onInput = (e: Event) => {
    const v = (e.currentTarget as HTMLTextAreaElement).value;
    setText(v);
    if (!v.startsWith('/')) setQrClosed(false);
    setQrIndex(0);
    const now = Date.now();
    if (mode === 'reply' && now - lastTyping.current > 2000) {
      lastTyping.current = now;
      realtime.send({ type: 'typing', conversation_id: c.id });
    }
  };

  const insertEmoji = (em: string) => {
    const el = area.current;
    const at = el?.selectionStart ?? text.length;
    setText(text.slice(0, at) + em + text.slice(at));
    setEmoji(false);
    el?.focus();
  };

  const placeholder =
    mode === 'reply' ? (touch ? t('composer.placeholder_reply_touch') : t('composer.placeholder_reply')) : mode === 'note' ? t('composer.placeholder_note') : t('composer.placeholder_a2a');
  return (
    <div
      class={`composer mode-${mode}${dropping ? ' dropping' : ''}`}
      data-testid="composer"
      onDragOver={(e) => {
        if (replyEnabled && e.dataTransfer?.types.includes('Files')) {
          e.preventDefault();
          setDropping(true);
        }
      }}
      onDragLeave={() => setDropping(false)}
      onDrop={(e) => {
        setDropping(false);
        if (replyEnabled && e.dataTransfer?.files.length) {
          e.preventDefault();
          addFiles(Array.from(e.dataTransfer.files));
        }
      }}
    >
      {qrOpen && (
        <ul class="quick-replies" role="listbox" data-testid="quick-replies">
          {matchesQr.length === 0 && <li class="none">{t('composer.no_quick_replies', { code: slash![1] })}</li>}
          {matchesQr.map((q, i) => (
            <li
              key={q.id}
              role="option"
              aria-selected={i === qrIndex}
              class={i === qrIndex ? 'active' : ''}
              onMouseDown={(e) => {
                e.preventDefault();
                pick(i);
              }}
              data-testid="quick-reply"
            >
              <b>/{q.code}</b> <span>{q.text}</span>
            </li>
          ))}
        </ul>
      )}
      <div class="modes">
        {(['reply', 'note', 'agent_to_agent'] as Mode[]).map((m) => (
          <button key={m} class={mode === m ? 'mode active' : 'mode'} onClick={() => setMode(m)} disabled={m === 'reply' ? !replyEnabled : !privateEnabled} data-testid={`mode-${m}`}>
            {m === 'reply' ? t('composer.reply') : m === 'note' ? t('composer.note') : t('composer.a2a')}
          </button>
        ))}
        <span class="grow" />
        <span class="hint">{t('composer.attach_limit', { size: formatBytes(limit) })}</span>
      </div>
      {tray.length > 0 && (
        <ul class="tray" data-testid="tray">
          {tray.map((p) => (
            <li key={p.key} class={p.error ? 'failed' : ''} data-testid="tray-item">
              {p.preview ? <img src={p.preview} alt="" /> : p.item ? <Thumb item={p.item} /> : <span class="file-icon">{p.name.split('.').pop()?.toUpperCase()}</span>}
              <span class="name" title={p.name}>
                {p.name}
              </span>
              <small>{p.error ?? formatBytes(p.size)}</small>
              {p.progress !== undefined && <progress value={p.progress} max={1} aria-label={t('composer.uploading', { name: p.name })} />}
              <button class="icon" aria-label={t('composer.remove_file', { name: p.name })} title={t('composer.remove_file', { name: p.name })} disabled={p.progress !== undefined} onClick={() => drop(p.key)}>
                ×
              </button>
            </li>
          ))}
        </ul>
      )}
      <div class="input-row">
        <textarea
          ref={area}
          value={text}
          rows={3}
          placeholder={placeholder}
          disabled={!enabled}
          onInput={onInput}
          onKeyDown={onKeyDown}
          onPaste={onPaste}
          data-testid="composer-input"
        />
        <div class="tools">
          <button title={t('composer.emoji')} aria-label={t('composer.emoji')} disabled={!enabled} onClick={() => setEmoji(!emoji)}>
            <Smile />
          </button>
          <button title={t('composer.attach')} aria-label={t('composer.attach')} disabled={!enabled || mode !== 'reply'} onClick={() => fileInput.current?.click()}>
            <Clip />
          </button>
          <button title={t('composer.library')} aria-label={t('composer.library')} disabled={!enabled || mode !== 'reply'} onClick={() => setPicking(!picking)} data-testid="open-library">
            <Images />
          </button>
          <button class="primary" disabled={!enabled || (!text.trim() && (mode !== 'reply' || tray.length === 0))} onClick={send} data-testid="send">
            {t('composer.send')}
          </button>
        </div>
        <input
          ref={fileInput}
          type="file"
          multiple
          hidden
          accept="image/*,video/*,audio/*,application/pdf,.doc,.docx,.xls,.xlsx,.zip,.txt"
          onChange={(e) => {
            const files = e.currentTarget.files;
            if (files) addFiles(Array.from(files));
            e.currentTarget.value = '';
          }}
        />
      </div>
      {emoji && (
        <div class="emoji-picker" data-testid="emoji-picker">
          {EMOJI.map((em) => (
            <button key={em} onClick={() => insertEmoji(em)}>
              {em}
            </button>
          ))}
        </div>
      )}
      {picking && <LibraryPicker onPick={(m) => addItems([m])} onClose={() => setPicking(false)} />}
      {dropping && <div class="drop-hint">{t('composer.drop')}</div>}
      {error && (
        <div class="error" role="alert">
          {error}
        </div>
      )}
    </div>
  );
}
