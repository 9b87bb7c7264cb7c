// Files on messages as the thread and the gallery show them: ours and the customers'. A
// customer's file is downloaded by the server first ("downloading…"), may have failed (with a
// retry), or — Instagram, whose policy forbids keeping the bytes — is shown from the provider's
// URL while that lives, and said to have expired when it no longer does.

import { useState } from 'preact/hooks';
import { api, Attachment, MessageMeta } from './api';
import { formatBytes, reasonText, t } from './i18n';
import { isImage, isVideo } from '../shared/media';

const AUDIO = ['audio/mp4', 'audio/mpeg', 'audio/ogg', 'audio/wav'];

/** Only web links are shown or followed (a provider's URL is customer-controlled data). */
const webUrl = (u: string | null | undefined): string | undefined => (u && /^https?:\/\//i.test(u) ? u : undefined);

export function FileView({ a, compact }: { a: Attachment; compact?: boolean }) {
  const [file, setFile] = useState(a);
  const [busy, setBusy] = useState(false);
  // A newer copy from the server (the thread refetched it) wins over our local one.
  const f = file.id === a.id && file.state !== a.state && !busy ? a : file;
  const state = f.state ?? 'ready';
  if (state === 'pending') {
    return (
      <span class="file pending" data-testid="file-pending">
        ⏳ {t('file.downloading')}
      </span>
    );
  }
  if (state === 'failed') {
    const retry = async () => {
      setBusy(true);
      try {
        setFile(await api<Attachment>('POST', `/attachments/${f.id}/retry`));
      } catch {
        /* the error toast is shown by api() */
      } finally {
        setBusy(false);
      }
    };
    return (
      <span class="file failed" data-testid="file-failed">
        {t('file.failed')}
        {f.error && ` (${reasonText(f.error)})`}{' '}
        <button class="link" onClick={retry} disabled={busy} data-testid="file-retry">
          {t('file.retry')}
        </button>
      </span>
    );
  }
  if (state === 'remote') return <RemoteFile f={f} />;
  const kind = f.kind;
  if (isImage(f.content_type)) {
    return (
      <a href={f.url ?? '#'} target="_blank" rel="noopener" class={kind === 'sticker' ? 'sticker' : undefined}>
        <img src={(compact || kind !== 'sticker') && f.thumbnail_url ? f.thumbnail_url : (f.url ?? '')} alt={f.filename} loading="lazy" data-testid="file-image" />
      </a>
    );
  }
  if (isVideo(f.content_type)) {
    // Our copy of the provider's own thumbnail where it sent one, else the browser's first frame.
    return <video src={f.url ?? ''} poster={f.thumbnail_url} controls preload="metadata" data-testid="file-video" />;
  }
  if (AUDIO.includes(f.content_type) && !compact) {
    return <audio src={f.url ?? ''} controls preload="metadata" data-testid="file-audio" />;
  }
  return (
    <a class="file" href={f.url ?? '#'} data-testid="file-download">
      📎 {f.filename} ({formatBytes(f.size_bytes)})
    </a>
  );
}

/** Shown from the provider's URL; when it no longer loads, say so plainly. */
function RemoteFile({ f }: { f: Attachment }) {
  const [expired, setExpired] = useState(false);
  const url = webUrl(f.remote_url);
  if (expired || !url) {
    return (
      <span class="file expired" data-testid="file-expired">
        {t('file.expired_instagram')}
      </span>
    );
  }
  const gone = () => setExpired(true);
  if (f.kind === 'video') return <video src={url} controls preload="metadata" onError={gone} data-testid="file-remote" />;
  if (f.kind === 'audio') return <audio src={url} controls preload="metadata" onError={gone} data-testid="file-remote" />;
  if (f.kind === 'image' || f.kind === 'sticker') {
    return (
      <a href={url} target="_blank" rel="noopener noreferrer">
        <img src={url} alt={f.filename} loading="lazy" referrerpolicy="no-referrer" onError={gone} data-testid="file-remote" />
      </a>
    );
  }
  return (
    <a class="file" href={url} target="_blank" rel="noopener noreferrer" data-testid="file-remote">
      📎 {f.filename}
    </a>
  );
}

/** Contact cards a customer shared: WhatsApp's `contacts[]`, Telegram's `contact`. */
export function ContactCards({ meta }: { meta: MessageMeta }) {
  const cards: { name: string; phone: string }[] = [];
  for (const c of meta.contacts ?? []) {
    cards.push({ name: c?.name?.formatted_name ?? '', phone: c?.phones?.[0]?.phone ?? '' });
  }
  if (meta.contact) cards.push({ name: meta.contact.name ?? '', phone: meta.contact.phone ?? '' });
  const shown = cards.filter((c) => c.name || c.phone);
  if (shown.length === 0) return null;
  return (
    <div class="contact-cards">
      {shown.map((c, i) => (
        <div class="contact-card" key={i} data-testid="contact-card">
          <span aria-hidden="true">👤</span> <strong>{c.name || t('file.contact')}</strong>
          {c.phone && (
            <>
              {' · '}
              <a href={`tel:${c.phone.replace(/[^0-9+]/g, '')}`}>{c.phone}</a>
            </>
          )}
        </div>
      ))}
    </div>
  );
}

/** A location shared as an attachment (Zalo: `{type: "location", coordinates}`), as `meta.location`. */
export function attachmentLocation(meta: MessageMeta): MessageMeta['location'] {
  const a = (meta.attachments ?? []).find((x) => x.type === 'location' && x.coordinates);
  if (!a?.coordinates) return undefined;
  return { latitude: Number(a.coordinates.latitude), longitude: Number(a.coordinates.longitude) };
}
