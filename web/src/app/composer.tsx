// The composer: Enter sends, Shift+Enter breaks the line; `/code` opens quick replies (↑/↓, Enter,
// Esc); reply / private note / to-colleagues modes; emoji; files by button or drag-and-drop.

import { useRef, useState } from 'preact/hooks';
import { api, ApiError, Conversation, upload } from './api';
import { errorText, fieldErrorText, fileRefusalText, formatBytes, t } from './i18n';
import { realtime } from './realtime';
import { useShared } from './store';
import { Clip, Smile } from './icons';

type Mode = 'reply' | 'note' | 'agent_to_agent';

const EMOJI = ['😀', '😊', '😍', '🙏', '👍', '👌', '🎉', '❤️', '😢', '😅', '🤔', '👋', '✅', '📦', '🚚', '💰', '🎁', '⭐', '🔥', '😉'];
const DEFAULT_LIMIT = 20 * 1024 * 1024;

const KINDS = ['image', 'video', 'audio', 'document'] as const;

/** The channel's file limits in words ("Images ≤ 5 MB · Video ≤ 16 MB …"), or ours alone. */
function attachHint(media: Record<string, number | null> | undefined, limit: number): string {
  if (!media) return t('composer.attach_limit', { size: formatBytes(limit) });
  return KINDS.filter((k) => media[k] != null)
    .map((k) => `${t(`composer.kind_${k}`)} ≤ ${formatBytes(media[k]!)}`)
    .join(' · ');
}

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
  const [busy, setBusy] = useState('');
  const [emoji, setEmoji] = useState(false);
  const [qrIndex, setQrIndex] = useState(0);
  const [qrClosed, setQrClosed] = useState(false);
  const [dropping, setDropping] = useState(false);
  const area = useRef<HTMLTextAreaElement>(null);
  const fileInput = useRef<HTMLInputElement>(null);
  const lastTyping = useRef(0);
  const limit = s.me?.limits?.max_upload_bytes ?? DEFAULT_LIMIT;
  const touch = window.matchMedia('(pointer: coarse)').matches;

  // Quick replies: the text is `/` + the start of a code.
  const slash = /^\/([a-z0-9_-]*)$/i.exec(text);
  const qrOpen = enabled && !!slash && !qrClosed;
  const matchesQr = qrOpen ? s.quickReplies.filter((q) => q.code.startsWith(slash![1].toLowerCase())) : [];

  const send = async () => {
    const body = text.trim();
    if (!body || !enabled) return;
    setError('');
    // Clear at once (the message shows up over the socket); put the text back if the send fails.
    const sent = text;
    setText('');
    setQrClosed(false);
    try {
      await api('POST', `/conversations/${c.id}/messages`, mode === 'reply' ? { text: sent, kind: mode, ...extra } : { text: sent, kind: mode });
    } catch (e) {
      setText((now) => (now === '' ? sent : now));
      if (e instanceof ApiError) {
        setError(e.field === 'text' ? fieldErrorText(e) : errorText(e.code, e.message));
        if (e.code === 'window_closed' || e.code === 'human_agent_confirmation_required') onRefused?.();
      }
    }
  };

  const pick = (i: number) => {
    const q = matchesQr[i];
    if (!q) return;
    setText(q.text);
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

  const sendFiles = async (files: FileList | File[]) => {
    setError('');
    for (const f of Array.from(files)) {
      if (f.size > limit) {
        setError(t('composer.too_big', { name: f.name, size: formatBytes(limit) }));
        continue;
      }
      // The channel's own limit for this kind of file, told before uploading (the server decides
      // from the bytes; the browser's type is only a hint here).
      const kind = KINDS.find((k) => f.type.startsWith(`${k}/`)) ?? 'document';
      const max = s.me?.limits?.media?.[c.channel]?.[kind];
      if (typeof max === 'number' && f.size > max) {
        setError(fileRefusalText(f.name, 'file_too_large', '', { kind, max_bytes: max }));
        continue;
      }
      setBusy(t('composer.uploading', { name: f.name }));
      try {
        // The reply's policy confirmation (HUMAN_AGENT) covers files too.
        const confirmed = (extra.policy as { human_agent_confirmed?: boolean } | undefined)?.human_agent_confirmed === true;
        await upload(c.id, f, undefined, confirmed);
      } catch (e) {
        if (e instanceof ApiError) setError(fileRefusalText(f.name, e.code, e.message, e.extra));
      } finally {
        setBusy('');
      }
    }
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
          sendFiles(e.dataTransfer.files);
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
        <span class="hint" data-testid="attach-limits">{attachHint(s.me?.limits?.media?.[c.channel], limit)}</span>
      </div>
      <div class="input-row">
        <textarea
          ref={area}
          value={text}
          rows={3}
          placeholder={placeholder}
          disabled={!enabled}
          onInput={onInput}
          onKeyDown={onKeyDown}
          data-testid="composer-input"
        />
        <div class="tools">
          <button title={t('composer.emoji')} aria-label={t('composer.emoji')} disabled={!enabled} onClick={() => setEmoji(!emoji)}>
            <Smile />
          </button>
          <button title={t('composer.attach')} aria-label={t('composer.attach')} disabled={!enabled || mode !== 'reply'} onClick={() => fileInput.current?.click()}>
            <Clip />
          </button>
          <button class="primary" disabled={!enabled || !text.trim()} onClick={send} data-testid="send">
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
            if (files) sendFiles(files);
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
      {busy && <div class="busy">{busy}</div>}
      {dropping && <div class="drop-hint">{t('composer.drop')}</div>}
      {error && (
        <div class="error" role="alert">
          {error}
        </div>
      )}
    </div>
  );
}
