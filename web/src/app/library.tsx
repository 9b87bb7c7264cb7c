// The saved-media library: supervisors add, name, tag and remove files; everyone searches it, and
// the composer's picker puts files into the message being written.

import { useEffect, useRef, useState } from 'preact/hooks';
import { api, LibraryItem, Page, query, sendFile } from './api';
import { FieldError, useFormErrors } from './form';
import { formatBytes, t } from './i18n';
import { isImage } from '../shared/media';

export async function loadLibrary(q = ''): Promise<LibraryItem[]> {
  return (await api<Page<LibraryItem>>('GET', `/library${query({ q: q.trim() })}`)).items;
}

export function Thumb({ item }: { item: LibraryItem }) {
  return isImage(item.content_type) ? <img src={item.url} alt="" loading="lazy" /> : <span class="file-icon">{item.filename.split('.').pop()?.toUpperCase() ?? ''}</span>;
}

function useSearch() {
  const [q, setQ] = useState('');
  const [items, setItems] = useState<LibraryItem[] | null>(null);
  const reload = () => loadLibrary(q).then(setItems);
  useEffect(() => {
    // Typing narrows the list a moment after the last key.
    const timer = window.setTimeout(() => reload().catch(() => undefined), 150);
    return () => window.clearTimeout(timer);
  }, [q]);
  return { q, setQ, items, reload };
}

/** The composer's picker: search, then a click adds the file to the message. */
export function LibraryPicker({ onPick, onClose }: { onPick: (item: LibraryItem) => void; onClose: () => void }) {
  const { q, setQ, items } = useSearch();
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  return (
    <div class="library-picker" role="dialog" aria-label={t('library.title')} data-testid="library-picker" onKeyDown={(e) => e.key === 'Escape' && onClose()}>
      <input ref={input} type="search" value={q} placeholder={t('library.search')} aria-label={t('library.search')} onInput={(e) => setQ(e.currentTarget.value)} />
      {items && items.length === 0 && <p class="empty">{q.trim() ? t('library.none_found', { q }) : t('library.empty')}</p>}
      <ul>
        {(items ?? []).map((m) => (
          <li key={m.id}>
            <button
              onClick={() => {
                onPick(m);
                onClose();
              }}
              data-testid="library-item"
            >
              <Thumb item={m} />
              <span>
                <b>{m.name}</b>
                <small>
                  {m.tags.map((tag) => `#${tag}`).join(' ')} · {formatBytes(m.size_bytes)}
                </small>
              </span>
            </button>
          </li>
        ))}
      </ul>
    </div>
  );
}

/** The library's own page (supervisors and admins). */
export function LibraryPage() {
  const { q, setQ, items, reload } = useSearch();
  const [file, setFile] = useState<File | null>(null);
  const [form, setForm] = useState({ name: '', tags: '' });
  const [progress, setProgress] = useState<number | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const fileInput = useRef<HTMLInputElement>(null);
  const errs = useFormErrors(['name', 'tags', 'file']);
  const { fail, clear } = errs;

  const add = async (e: Event) => {
    e.preventDefault();
    clear();
    try {
      if (editing) {
        await api('PATCH', `/library/${editing}`, { name: form.name, tags: form.tags.split(',') });
      } else if (file) {
        const p = new URLSearchParams({ filename: file.name, name: form.name || file.name, tags: form.tags });
        setProgress(0);
        await sendFile(`/library?${p}`, file, setProgress);
      }
      setForm({ name: '', tags: '' });
      setFile(null);
      setEditing(null);
      if (fileInput.current) fileInput.current.value = '';
      await reload();
    } catch (err) {
      fail(err);
    } finally {
      setProgress(null);
    }
  };
  const remove = async (id: string) => {
    clear();
    try {
      await api('DELETE', `/library/${id}`);
      await reload();
    } catch (err) {
      fail(err);
    }
  };
  return (
    <div class="admin library" data-testid="library-page">
      <h2>{t('library.title')}</h2>
      <input type="search" value={q} placeholder={t('library.search')} aria-label={t('library.search')} onInput={(e) => setQ(e.currentTarget.value)} />
      {items && items.length === 0 && <p class="empty">{q.trim() ? t('library.none_found', { q }) : t('library.empty')}</p>}
      <ul class="library-grid">
        {(items ?? []).map((m) => (
          <li key={m.id} data-testid="library-row">
            <a href={m.url} target="_blank" rel="noopener">
              <Thumb item={m} />
            </a>
            <b>{m.name}</b>
            <small>
              {m.filename} · {formatBytes(m.size_bytes)}
            </small>
            <small>{m.tags.map((tag) => `#${tag}`).join(' ')}</small>
            <span>
              <button
                onClick={() => {
                  setEditing(m.id);
                  setForm({ name: m.name, tags: m.tags.join(', ') });
                }}
              >
                {t('admin.edit')}
              </button>
              <button onClick={() => remove(m.id)}>{t('admin.delete')}</button>
            </span>
          </li>
        ))}
      </ul>
      <form class="card inline" onSubmit={add}>
        <h3>{editing ? t('admin.edit') : t('library.add')}</h3>
        {!editing && (
          <span class="field">
            <input ref={fileInput} type="file" aria-label={t('library.file')} required onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)} data-testid="library-file" />
            <FieldError text={errs.of('file')} />
          </span>
        )}
        <span class="field">
          <input aria-label={t('library.name')} placeholder={t('library.name')} value={form.name} onInput={(e) => setForm({ ...form, name: e.currentTarget.value })} aria-invalid={!!errs.of('name')} />
          <FieldError text={errs.of('name')} />
        </span>
        <span class="field grow">
          <input aria-label={t('library.tags')} placeholder={t('library.tags')} value={form.tags} onInput={(e) => setForm({ ...form, tags: e.currentTarget.value })} aria-invalid={!!errs.of('tags')} />
          <FieldError text={errs.of('tags')} />
        </span>
        <button class="primary" type="submit" disabled={progress !== null}>
          {editing ? t('admin.save') : t('admin.create')}
        </button>
        {progress !== null && <progress value={progress} max={1} />}
        {errs.general && <p class="error">{errs.general}</p>}
      </form>
    </div>
  );
}
