// Comment rules in the agent app: per Facebook Page / Instagram account, the rules (a form that
// adds one, the list with their conditions and steps, the default), the posts view (recent posts,
// their counters, their own rules) and, on a comment card, why a rule acted on it.

import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from './api';
import { errorText, Key, t } from './i18n';
import { canSupervise, useShared } from './store';

interface Condition {
  type: string;
  keywords?: string[];
  match?: string;
  from?: string;
  to?: string;
}

interface Step {
  type: string;
  variants?: string[];
  text?: string;
  tag?: string;
}

interface Rule {
  name: string;
  when?: Condition[];
  do: Step[];
}

interface RuleSet {
  rules: Rule[];
  default?: Step[];
  mode?: 'replace' | 'extend';
}

interface Stored {
  post_id: string | null;
  rules: RuleSet;
  version: number;
}

interface Post {
  post_id: string;
  post_link: string | null;
  comments: number;
  hidden: number;
  replied: number;
  private_replied: number;
  liked: number;
  last_at: number;
  override: { mode: string; rules: number } | null;
}

function message(e: unknown): string {
  if (e instanceof ApiError) return errorText(e.code, e.message);
  return String(e);
}

/** Why a rule acted, in words: "có số điện thoại" / "has a phone number". */
export function becauseText(because: unknown): string {
  const list = Array.isArray(because) ? (because as string[]) : [];
  const first = list.find((b) => b !== 'any') ?? list[0] ?? 'no_rule_matched';
  const key = `because.${first}` as Key;
  return t(key);
}

/** The automatic actions on a comment card: "hidden automatically: has a phone number" and more. */
export function AutoActions({ auto }: { auto: Record<string, { status: string; because?: unknown; rule?: string; result?: string | null }> | undefined }) {
  if (!auto) return null;
  const entries = Object.entries(auto);
  if (!entries.length) return null;
  return (
    <div class="auto-actions" data-testid="auto-actions">
      {entries.map(([action, a]) => {
        const kind = action.split(':')[0];
        const label = t(`auto.${kind}` as Key);
        const failed = a.status === 'failed';
        return (
          <span class={failed ? 'auto failed' : 'auto'} key={action} data-testid={`auto-${kind}`} title={a.rule ?? ''}>
            {failed ? t('auto.failed', { action: label, reason: a.result ?? '' }) : `${label}: ${becauseText(a.because)}`}
          </span>
        );
      })}
    </div>
  );
}

function conditionText(c: Condition): string {
  if (c.type === 'keywords') return `${t('because.keywords')} (${(c.keywords ?? []).join(', ')})`;
  if (c.type === 'active_hours') return `${t('because.active_hours')} ${c.from}–${c.to}`;
  return t(`because.${c.type}` as Key);
}

function stepText(s: Step): string {
  const label = t(`auto.${s.type.replace('_comment', '').replace('add_tag', 'tag')}` as Key);
  const detail = s.variants ? s.variants.join(' / ') : s.text ?? s.tag ?? '';
  return detail ? `${label}: ${detail}` : label;
}

function RuleForm({ onAdd }: { onAdd: (r: Rule) => Promise<void> }) {
  const [name, setName] = useState('');
  const [when, setWhen] = useState('has_phone');
  const [keywords, setKeywords] = useState('');
  const [hide, setHide] = useState(true);
  const [like, setLike] = useState(false);
  const [reply, setReply] = useState('');
  const [privateText, setPrivateText] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const cond: Condition = when === 'keywords' ? { type: 'keywords', keywords: keywords.split(',').map((k) => k.trim()).filter(Boolean) } : { type: when };
    const steps: Step[] = [];
    if (hide) steps.push({ type: 'hide_comment' });
    if (like) steps.push({ type: 'like_comment' });
    if (privateText.trim()) steps.push({ type: 'private_reply', text: privateText.trim() });
    const variants = reply.split('\n').map((v) => v.trim()).filter(Boolean);
    if (variants.length) steps.push({ type: 'reply_comment', variants });
    setBusy(true);
    try {
      await onAdd({ name: name.trim() || conditionText(cond), when: [cond], do: steps });
      setName('');
      setReply('');
      setPrivateText('');
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="rule-form" onSubmit={submit} data-testid="rule-form">
      <h3>{t('rules.add')}</h3>
      <label>
        {t('rules.name')}
        <input value={name} onInput={(e) => setName(e.currentTarget.value)} data-testid="rule-name" />
      </label>
      <label>
        {t('rules.when')}
        <select value={when} onChange={(e) => setWhen(e.currentTarget.value)} data-testid="rule-when">
          {['has_phone', 'has_email', 'keywords', 'first_comment', 'any'].map((c) => (
            <option value={c} key={c}>
              {t(`because.${c}` as Key)}
            </option>
          ))}
        </select>
      </label>
      {when === 'keywords' && (
        <label>
          {t('rules.keywords')}
          <input value={keywords} onInput={(e) => setKeywords(e.currentTarget.value)} data-testid="rule-keywords" />
        </label>
      )}
      <label class="check">
        <input type="checkbox" checked={hide} onChange={(e) => setHide(e.currentTarget.checked)} data-testid="rule-hide" />
        {t('auto.hide')}
      </label>
      <label class="check">
        <input type="checkbox" checked={like} onChange={(e) => setLike(e.currentTarget.checked)} data-testid="rule-like" />
        {t('auto.like')}
      </label>
      <label>
        {t('rules.reply_variants')}
        <textarea rows={3} value={reply} onInput={(e) => setReply(e.currentTarget.value)} data-testid="rule-reply" />
      </label>
      <label>
        {t('rules.private_reply')}
        <input value={privateText} onInput={(e) => setPrivateText(e.currentTarget.value)} data-testid="rule-private" />
      </label>
      <button class="primary" disabled={busy} data-testid="rule-save">
        {t('rules.save')}
      </button>
    </form>
  );
}

/** A rule set as a list, with "remove" for supervisors. */
function RuleList({ set, onSave }: { set: RuleSet; onSave: (next: RuleSet) => void }) {
  return (
    <ol class="rules" data-testid="rules-list">
      {set.rules.map((r, i) => (
        <li key={`${r.name}-${i}`} data-testid="rule">
          <b>{r.name}</b> — {(r.when ?? [{ type: 'any' }]).map(conditionText).join(' + ')} → {r.do.map(stepText).join(', ')}
          {canSupervise() && (
            <button class="link danger" onClick={() => onSave({ ...set, rules: set.rules.filter((_, j) => j !== i) })}>
              {t('rules.remove')}
            </button>
          )}
        </li>
      ))}
      {set.rules.length === 0 && <li class="muted">{t('rules.none')}</li>}
    </ol>
  );
}

/** A post's own rules: replacing or coming before the Page's; removing them goes back to the Page's. */
function PostRules({ inbox, post, stored, onChanged }: { inbox: string; post: string; stored: Stored | null; onChanged: () => void }) {
  const [error, setError] = useState('');
  const set: RuleSet = stored?.rules ?? { rules: [], mode: 'extend' };
  const url = `/inboxes/${inbox}/posts/${encodeURIComponent(post)}/comment-rules`;
  const save = async (next: RuleSet) => {
    setError('');
    try {
      if (next.rules.length === 0 && !next.default?.length) await api('DELETE', url);
      else await api('PUT', url, { rules: next, version: stored?.version ?? 0 });
      onChanged();
    } catch (e) {
      setError(message(e));
    }
  };
  return (
    <div class="post-rules" data-testid="post-rules">
      <label>
        {t('posts.mode')}
        <select value={set.mode ?? 'extend'} onChange={(e) => save({ ...set, mode: e.currentTarget.value as RuleSet['mode'] })} disabled={!canSupervise() || set.rules.length === 0} data-testid="post-mode">
          <option value="extend">{t('posts.mode_extend')}</option>
          <option value="replace">{t('posts.mode_replace')}</option>
        </select>
      </label>
      {error && <p class="field-error" role="alert">{error}</p>}
      <RuleList set={set} onSave={save} />
      {canSupervise() && <RuleForm onAdd={(r) => save({ ...set, mode: set.mode ?? 'extend', rules: [...set.rules, r] })} />}
    </div>
  );
}

function Posts({ inbox, overrides, version, onChanged }: { inbox: string; overrides: Stored[]; version: number; onChanged: () => void }) {
  const [posts, setPosts] = useState<Post[] | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  useEffect(() => {
    api<{ posts: Post[] }>('GET', `/inboxes/${inbox}/posts`)
      .then((v) => setPosts(v.posts))
      .catch(() => setPosts([]));
  }, [inbox, version]);
  if (!posts) return null;
  return (
    <section class="posts" data-testid="posts">
      <h3>{t('posts.title')}</h3>
      {posts.length === 0 ? (
        <p class="muted">{t('posts.empty')}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>{t('posts.post')}</th>
              <th>{t('posts.comments')}</th>
              <th>{t('posts.hidden')}</th>
              <th>{t('posts.replied')}</th>
              <th>{t('posts.private_replied')}</th>
              <th>{t('posts.rules')}</th>
            </tr>
          </thead>
          <tbody>
            {posts.map((p) => (
              <tr key={p.post_id} data-testid="post-row">
                <td>{p.post_link ? <a href={p.post_link} target="_blank" rel="noopener">{p.post_id}</a> : p.post_id}</td>
                <td>{p.comments}</td>
                <td data-testid="post-hidden">{p.hidden}</td>
                <td>{p.replied}</td>
                <td>{p.private_replied}</td>
                <td>
                  {p.override ? t(p.override.mode === 'extend' ? 'posts.extends' : 'posts.replaces', { n: String(p.override.rules) }) : t('posts.page_rules')}{' '}
                  <button class="link" aria-expanded={open === p.post_id} onClick={() => setOpen(open === p.post_id ? null : p.post_id)} data-testid="post-edit">
                    {t('posts.edit')}
                  </button>
                  {open === p.post_id && <PostRules inbox={inbox} post={p.post_id} stored={overrides.find((o) => o.post_id === p.post_id) ?? null} onChanged={onChanged} />}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function CommentRulesPage() {
  const s = useShared();
  const pages = s.inboxes.filter((i) => i.channel === 'messenger' || i.channel === 'instagram');
  const [inbox, setInbox] = useState<string>(pages[0]?.id ?? '');
  const [page, setPage] = useState<Stored | null>(null);
  const [overrides, setOverrides] = useState<Stored[]>([]);
  const [error, setError] = useState('');
  const [saved, setSaved] = useState(0);
  useEffect(() => {
    if (!inbox && pages[0]) setInbox(pages[0].id);
  }, [pages.length]);
  useEffect(() => {
    if (!inbox) return;
    api<{ page: Stored | null; posts: Stored[] }>('GET', `/inboxes/${inbox}/comment-rules`)
      .then((v) => {
        setPage(v.page);
        setOverrides(v.posts ?? []);
      })
      .catch((e) => setError(message(e)));
  }, [inbox, saved]);
  const set: RuleSet = page?.rules ?? { rules: [] };
  const save = async (next: RuleSet) => {
    setError('');
    try {
      await api('PUT', `/inboxes/${inbox}/comment-rules`, { rules: next, version: page?.version ?? 0 });
      setSaved((n) => n + 1);
    } catch (e) {
      setError(message(e));
    }
  };
  if (!pages.length) return <div class="admin"><p class="muted">{t('rules.no_pages')}</p></div>;
  return (
    <div class="admin comment-rules" data-testid="comment-rules">
      <h2>{t('rules.title')}</h2>
      <label>
        {t('rules.page')}
        <select value={inbox} onChange={(e) => setInbox(e.currentTarget.value)} data-testid="rules-inbox">
          {pages.map((p) => (
            <option value={p.id} key={p.id}>
              {p.name}
            </option>
          ))}
        </select>
      </label>
      <p class="muted">{t('rules.hint')}</p>
      {error && <p class="field-error" data-testid="rules-error">{error}</p>}
      <RuleList set={set} onSave={save} />
      {canSupervise() && <RuleForm onAdd={(r) => save({ ...set, rules: [...set.rules, r] })} />}
      {inbox && <Posts inbox={inbox} overrides={overrides} version={saved} onChanged={() => setSaved((n) => n + 1)} key={inbox} />}
    </div>
  );
}
