// Automation in the agent app: the flows list and editor (steps outlined with their problems,
// a simulator to chat with the flow on a chosen channel, a dry run over recent conversations),
// the FAQ editor, and in a conversation the bot banner with "take over", the auto-reply switch,
// the fields the bot captured and the customer's scheduled flows.

import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, Conversation } from './api';
import { emptyFlow, FlowJson, FlowProblem, localProblems, mergeProblems, normalize, Obj, shapeError } from './flow-model';
import { FlowRef, VisualEditor } from './flow-visual';
import { errorText, fieldErrorText, fieldLabel, formatTime, Key, t } from './i18n';
import { canSupervise } from './store';

export interface StoredFlow {
  id: string;
  name: string;
  version: number;
  active: boolean;
  flow: FlowJson;
  updated_at: number;
}


export interface Scheduled {
  id: string;
  flow_id: string;
  flow_name: string | null;
  conversation_id: string;
  attached_at: number;
  send_at: number;
  status: 'scheduled' | 'sent' | 'failed' | 'blocked_by_window' | 'cancelled';
  reason: string | null;
  window?: { allowed: 'open' | 'template_required' | 'not_allowed'; window_ends_at: number | null };
}

interface AutomationState {
  auto_reply: boolean;
  running: { flow_id: string; started_at: number } | null;
  fields: Record<string, string>;
}

function message(e: unknown): string {
  if (e instanceof ApiError) return e.field ? `${fieldLabel(e.field)}: ${fieldErrorText(e)}` : errorText(e.code, e.message);
  return String(e);
}

const STARTER: FlowJson = {
  name: 'Chào khách',
  version: 1,
  triggers: [{ type: 'new_conversation' }],
  start: 'greet',
  steps: [
    { id: 'greet', do: { type: 'send_message', variants: [{ text: 'Chào {{contact.name | anh/chị}} ạ! Shop có thể giúp gì ạ?' }], next: 'faq' } },
    { id: 'faq', do: { type: 'faq_bot', fallback: 'Dạ câu này shop chưa rõ, anh/chị nhắn "gặp nhân viên" để được tư vấn nhé.', max_misses: 3 } },
  ],
};

export async function listFlows(): Promise<StoredFlow[]> {
  return (await api<{ items: StoredFlow[] }>('GET', '/flows')).items;
}

// ------------------------------------------------------------------ the flows page

export function FlowsPage() {
  const [flows, setFlows] = useState<StoredFlow[]>([]);
  const [editing, setEditing] = useState<StoredFlow | 'new' | null>(null);
  const [error, setError] = useState('');
  const reload = () => listFlows().then(setFlows).catch((e) => setError(message(e)));
  useEffect(() => {
    reload();
  }, []);
  const toggle = async (f: StoredFlow) => {
    setError('');
    try {
      await api('PUT', `/flows/${f.id}`, { flow: f.flow, active: !f.active, version: f.version });
      await reload();
    } catch (e) {
      setError(message(e));
    }
  };
  const remove = async (f: StoredFlow) => {
    if (!window.confirm(t('flows.confirm_delete', { name: f.name }))) return;
    try {
      await api('DELETE', `/flows/${f.id}`);
      await reload();
    } catch (e) {
      setError(message(e));
    }
  };
  if (editing) {
    return (
      <FlowEditor
        flow={editing === 'new' ? null : editing}
        onDone={() => {
          setEditing(null);
          reload();
        }}
      />
    );
  }
  return (
    <div class="admin" data-testid="flows-page">
      <h2>{t('nav.flows')}</h2>
      <p class="hint">{t('flows.intro')}</p>
      <table>
        <thead>
          <tr>
            <th>{t('flows.name')}</th>
            <th>{t('flows.triggers')}</th>
            <th>{t('flows.version')}</th>
            <th>{t('flows.active')}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {flows.map((f) => (
            <tr key={f.id} data-testid="flow-row">
              <td>
                <b>{f.name}</b>
              </td>
              <td class="wrap">{f.flow.triggers.map((tr) => t(`trigger.${tr.type}` as Key)).join(', ')}</td>
              <td>v{f.version}</td>
              <td>
                <input type="checkbox" checked={f.active} onChange={() => toggle(f)} aria-label={t('flows.active')} />
              </td>
              <td>
                <button onClick={() => setEditing(f)} data-testid="flow-edit">
                  {t('admin.edit')}
                </button>
                <button onClick={() => remove(f)}>{t('admin.delete')}</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {flows.length === 0 && <p class="muted">{t('flows.none')}</p>}
      <button class="primary" onClick={() => setEditing('new')} data-testid="flow-new">
        {t('flows.new')}
      </button>
      {error && <p class="error">{error}</p>}
    </div>
  );
}

/** The steps as an outline, each with the problems found in it. */
function Outline({ json, problems }: { json: FlowJson | null; problems: FlowProblem[] }) {
  if (!json || !Array.isArray(json.steps)) return null;
  const general = problems.filter((p) => !p.path.startsWith('steps['));
  return (
    <div class="outline" data-testid="flow-outline">
      {general.map((p) => (
        <p class="field-error" key={p.path + p.message} data-testid="flow-problem">
          {p.path}: {p.message}
        </p>
      ))}
      {json.steps.map((s) => {
        const mine = problems.filter((p) => p.path.startsWith(`steps[${s.id}]`));
        return (
          <div class={mine.length ? 'step-card bad' : 'step-card'} key={s.id} data-testid="flow-step">
            <b>{s.id}</b> <span class="badge">{t(`step.${s.do?.type}` as Key) || s.do?.type}</span>
            {s.id === json.start && <span class="badge">{t('flows.start_step')}</span>}
            {typeof s.do?.next === 'string' && <span class="muted"> → {s.do.next}</span>}
            {mine.map((p) => (
              <p class="field-error" key={p.path + p.message} data-testid="flow-problem">
                {p.path.slice(`steps[${s.id}]`.length).replace(/^\./, '') || s.id}: {p.message}
              </p>
            ))}
          </div>
        );
      })}
    </div>
  );
}

function FlowEditor({ flow, onDone }: { flow: StoredFlow | null; onDone: () => void }) {
  // One flow object for both tabs: the visual editor changes it; the JSON tab edits its text and
  // hands it back only when the text is a flow the editor can show.
  const [draft, setDraft] = useState<FlowJson>(flow ? normalize(flow.flow) : emptyFlow());
  const [tab, setTab] = useState<'visual' | 'json'>('visual');
  const [text, setText] = useState('');
  const [tabError, setTabError] = useState('');
  const [serverProblems, setServerProblems] = useState<FlowProblem[]>([]);
  const [checked, setChecked] = useState<'' | 'ok' | 'bad' | 'checking'>('');
  const [error, setError] = useState('');
  const [saved, setSaved] = useState<StoredFlow | null>(flow);
  const [others, setOthers] = useState<FlowRef[]>([]);
  const seq = useRef(0);
  // What was last loaded or saved: leaving with anything else asks first.
  const [pristine, setPristine] = useState(() => JSON.stringify(flow ? normalize(flow.flow) : emptyFlow()));
  useEffect(() => {
    listFlows()
      .then((all) => setOthers(all.map((f) => ({ id: f.id, name: f.name }))))
      .catch(() => setOthers([]));
  }, []);

  let parsed: FlowJson | null = null;
  let parseError = '';
  if (tab === 'json') {
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      parseError = String(e);
    }
  } else parsed = draft;

  const runCheck = async (f: unknown) => {
    const n = ++seq.current;
    setChecked('checking');
    try {
      const r = await api<{ valid: boolean; errors: FlowProblem[] }>('POST', '/flows/check', { flow: f });
      if (n !== seq.current) return;
      setServerProblems(r.errors);
      setChecked(r.valid ? 'ok' : 'bad');
    } catch (e) {
      if (n === seq.current) {
        setChecked('');
        setError(message(e));
      }
    }
  };
  // In the editor every change is checked by the server too, a moment after typing stops.
  useEffect(() => {
    if (tab !== 'visual') return;
    seq.current++; // an answer about an older version is not shown
    const timer = setTimeout(() => runCheck(draft), 400);
    return () => clearTimeout(timer);
  }, [draft, tab]);

  const toJson = () => {
    setText(JSON.stringify(draft, null, 2));
    setTabError('');
    setTab('json');
  };
  const toVisual = () => {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      return setTabError(t('fe.json_blocked', { reason: String(e) }));
    }
    const why = shapeError(v);
    if (why) return setTabError(t('fe.json_blocked', { reason: why }));
    setTabError('');
    setDraft(normalize(v as Obj));
    setTab('visual');
  };
  const check = async () => {
    setError('');
    if (!parsed) return setServerProblems([{ path: 'flow', message: parseError }]);
    await runCheck(parsed);
  };
  const save = async () => {
    setError('');
    if (!parsed) return setServerProblems([{ path: 'flow', message: parseError }]);
    seq.current++;
    try {
      const body = { flow: parsed, active: saved?.active ?? true, version: saved?.version };
      const r = saved ? await api<StoredFlow>('PUT', `/flows/${saved.id}`, body) : await api<StoredFlow>('POST', '/flows', body);
      setSaved(r);
      setDraft(normalize(r.flow));
      setPristine(JSON.stringify(normalize(r.flow)));
      setText(JSON.stringify(r.flow, null, 2));
      setServerProblems([]);
      setChecked('ok');
    } catch (e) {
      if (e instanceof ApiError && e.code === 'invalid_flow') {
        setServerProblems((e.extra?.errors as FlowProblem[]) ?? []);
        setChecked('bad');
      } else setError(message(e));
    }
  };
  const leave = () => {
    const now = tab === 'visual' ? JSON.stringify(draft) : text === JSON.stringify(draft, null, 2) ? JSON.stringify(draft) : text;
    if (now !== pristine && !window.confirm(t('fe.discard'))) return;
    onDone();
  };
  const problems = tab === 'visual' ? mergeProblems(localProblems(draft), serverProblems) : serverProblems;
  const tabButton = (which: 'visual' | 'json', label: string, go: () => void) => (
    <button type="button" role="tab" id={`flow-tab-${which}`} aria-selected={tab === which} aria-controls="flow-tab-panel" class={tab === which ? 'tab active' : 'tab'} onClick={() => tab !== which && go()} data-testid={`flow-tab-${which}`}>
      {label}
    </button>
  );
  return (
    <div class="admin flow-editor" data-testid="flow-editor">
      <button class="link" onClick={leave} data-testid="flow-back">
        ← {t('nav.flows')}
      </button>
      <h2>{saved ? `${saved.name} · v${saved.version}` : t('flows.new')}</h2>
      <div class="editor-cols">
        <div>
          <div class="tabs fe-tabs" role="tablist" aria-label={t('fe.tabs')}>
            {tabButton('visual', t('fe.tab_visual'), toVisual)}
            {tabButton('json', t('fe.tab_json'), toJson)}
          </div>
          {tabError && (
            <p class="error" role="alert" data-testid="flow-tab-error">
              {tabError}
            </p>
          )}
          <div id="flow-tab-panel" role="tabpanel" aria-labelledby={`flow-tab-${tab}`}>
            {tab === 'visual' ? (
              <VisualEditor flow={draft} onChange={setDraft} problems={problems} flows={others} example={STARTER} />
            ) : (
              <>
                <p class="hint">{t('fe.json_hint')}</p>
                <label>
                  {t('flows.definition')}
                  <textarea class="code" rows={22} value={text} onInput={(e) => setText(e.currentTarget.value)} data-testid="flow-json" spellcheck={false} />
                </label>
                {parseError && <p class="field-error">{t('flows.not_json')}</p>}
              </>
            )}
          </div>
          <div class="row wrap fe-actions">
            <button onClick={check} data-testid="flow-check">
              {t('flows.check')}
            </button>
            <button class="primary" onClick={save} data-testid="flow-save">
              {t('admin.save')}
            </button>
            <span aria-live="polite">
              {checked === 'ok' && problems.length === 0 && (
                <span class="ok" data-testid="flow-valid">
                  {t('flows.valid')}
                </span>
              )}
              {checked === 'checking' && <span class="muted">{t('fe.checking')}</span>}
              {checked !== 'checking' && problems.length > 0 && (
                <span class="warn" data-testid="flow-problem-count">
                  {t('fe.problem_count', { n: problems.length })}
                </span>
              )}
            </span>
          </div>
          {error && <p class="error">{error}</p>}
          {tab === 'json' && <Outline json={parsed} problems={problems} />}
        </div>
        <div>
          {parsed && <Simulator flow={parsed} />}
          {saved && <DryRun id={saved.id} />}
        </div>
      </div>
    </div>
  );
}

// ------------------------------------------------------------------ simulator and dry run

type SimInput = { type: 'message'; text: string } | { type: 'tap'; payload: string } | { type: 'wait' };

interface SimEntry {
  from: 'customer' | 'bot' | 'system';
  text?: string;
  tap?: string;
  event?: string;
  rendering?: { form: string; buttons?: string[]; text?: string; reason?: string; because?: string };
  window?: { allowed: boolean; reason?: string };
  [k: string]: unknown;
}

const CHANNELS = ['messenger', 'instagram', 'whatsapp', 'zalo', 'telegram', 'shopee', 'livechat'];

function Simulator({ flow }: { flow: FlowJson }) {
  const [channel, setChannel] = useState('messenger');
  const [hours, setHours] = useState(0);
  const [inputs, setInputs] = useState<SimInput[]>([]);
  const [draft, setDraft] = useState('');
  const [result, setResult] = useState<{ transcript: SimEntry[]; fields: Record<string, string> } | null>(null);
  const [error, setError] = useState('');
  const run = async (next: SimInput[]) => {
    setError('');
    try {
      setResult(await api('POST', '/flows/simulate', { flow, channel, hours_since_customer: hours, inputs: next }));
      setInputs(next);
    } catch (e) {
      setError(message(e));
    }
  };
  const say = (e: Event) => {
    e.preventDefault();
    if (!draft.trim()) return;
    run([...inputs, { type: 'message', text: draft }]);
    setDraft('');
  };
  return (
    <section class="card simulator" data-testid="simulator">
      <h3>{t('sim.title')}</h3>
      <div class="row">
        <label>
          {t('sim.channel')}
          <select value={channel} onChange={(e) => setChannel(e.currentTarget.value)} data-testid="sim-channel">
            {CHANNELS.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t('sim.hours_since')}
          <input type="number" min={0} max={24 * 30} value={hours} onInput={(e) => setHours(Number(e.currentTarget.value) || 0)} />
        </label>
        <button onClick={() => run([])} data-testid="sim-start">
          {t('sim.start')}
        </button>
      </div>
      <ol class="transcript" data-testid="sim-transcript">
        {result?.transcript.map((m, i) => (
          <li key={i} class={`sim-${m.from}`} data-testid={`sim-${m.from}`}>
            {m.from === 'customer' && <span>{m.text ?? `[${m.tap}]`}</span>}
            {m.from === 'bot' && (
              <>
                <span class="bubble">{m.rendering?.form === 'numbered_list' ? m.rendering.text : m.text}</span>
                <span class="badge">{t(`sim.form.${m.rendering?.form ?? 'text'}` as Key)}</span>
                {m.window && !m.window.allowed && <span class="badge warn">{t('sim.window_blocked', { reason: m.window.reason ?? '' })}</span>}
                {m.rendering?.buttons?.map((b) => (
                  <button key={b} class="chip" onClick={() => run([...inputs, { type: 'message', text: b }])}>
                    {b}
                  </button>
                ))}
              </>
            )}
            {m.from === 'system' && <span class="muted">{m.event}{m.reason ? ` · ${JSON.stringify(m.reason)}` : ''}</span>}
          </li>
        ))}
      </ol>
      <form class="row" onSubmit={say}>
        <input value={draft} onInput={(e) => setDraft(e.currentTarget.value)} placeholder={t('sim.placeholder')} data-testid="sim-input" aria-label={t('sim.placeholder')} />
        <button type="submit" data-testid="sim-send">
          {t('sim.send')}
        </button>
        <button type="button" onClick={() => run([...inputs, { type: 'wait' }])}>
          {t('sim.wait')}
        </button>
      </form>
      {result && Object.keys(result.fields).length > 0 && (
        <p class="muted" data-testid="sim-fields">
          {Object.entries(result.fields)
            .map(([k, v]) => `${k}: ${v}`)
            .join(' · ')}
        </p>
      )}
      {error && <p class="error">{error}</p>}
    </section>
  );
}

function DryRun({ id }: { id: string }) {
  const [days, setDays] = useState(7);
  const [r, setR] = useState<{ scanned: number; matched: number; items: { conversation_id: string; contact_name: string | null; first_message: string; would_send: SimEntry[] }[] } | null>(null);
  const [error, setError] = useState('');
  const run = async () => {
    setError('');
    try {
      setR(await api('POST', `/flows/${id}/dry-run`, { days }));
    } catch (e) {
      setError(message(e));
    }
  };
  return (
    <section class="card" data-testid="dry-run">
      <h3>{t('dry.title')}</h3>
      <div class="row">
        <label>
          {t('dry.days')}
          <input type="number" min={1} max={90} value={days} onInput={(e) => setDays(Number(e.currentTarget.value) || 7)} />
        </label>
        <button onClick={run} data-testid="dry-run-go">
          {t('dry.run')}
        </button>
      </div>
      {r && (
        <>
          <p data-testid="dry-summary">{t('dry.summary', { matched: String(r.matched), scanned: String(r.scanned) })}</p>
          <ul>
            {r.items.map((i) => (
              <li key={i.conversation_id}>
                <b>{i.contact_name ?? '—'}</b>: “{i.first_message}” → {i.would_send.map((s) => s.text).join(' / ')}
              </li>
            ))}
          </ul>
        </>
      )}
      {error && <p class="error">{error}</p>}
    </section>
  );
}

// ------------------------------------------------------------------ FAQ

interface FaqEntry {
  phrasings: string[];
  answer: string;
}

export function FaqPage() {
  const [entries, setEntries] = useState<{ phrasings: string; answer: string }[]>([]);
  const [threshold, setThreshold] = useState(0.6);
  const [phrases, setPhrases] = useState('');
  const [defaults, setDefaults] = useState<string[]>([]);
  const [status, setStatus] = useState('');
  const [error, setError] = useState('');
  useEffect(() => {
    api<{ entries: FaqEntry[]; threshold: number; handoff_phrases: string[] | null; default_handoff_phrases: string[] }>('GET', '/faq').then((f) => {
      setEntries(f.entries.map((e) => ({ phrasings: e.phrasings.join('\n'), answer: e.answer })));
      setThreshold(f.threshold);
      setPhrases((f.handoff_phrases ?? f.default_handoff_phrases).join('\n'));
      setDefaults(f.default_handoff_phrases);
    });
  }, []);
  const lines = (s: string) =>
    s
      .split('\n')
      .map((x) => x.trim())
      .filter(Boolean);
  const save = async (e: Event) => {
    e.preventDefault();
    setError('');
    setStatus('');
    const own = lines(phrases);
    try {
      await api('PUT', '/faq', {
        entries: entries.map((x) => ({ phrasings: lines(x.phrasings), answer: x.answer.trim() })),
        threshold,
        handoff_phrases: own.join('\n') === defaults.join('\n') ? null : own,
      });
      setStatus(t('faq.saved'));
    } catch (err) {
      if (err instanceof ApiError && err.code === 'invalid_flow') {
        setError(((err.extra?.errors as FlowProblem[]) ?? []).map((p) => `${p.path}: ${p.message}`).join('; '));
      } else setError(message(err));
    }
  };
  const set = (i: number, patch: Partial<{ phrasings: string; answer: string }>) => setEntries((old) => old.map((x, j) => (j === i ? { ...x, ...patch } : x)));
  return (
    <form class="admin" onSubmit={save} data-testid="faq-page">
      <h2>{t('nav.faq')}</h2>
      <p class="hint">{t('faq.intro')}</p>
      {entries.map((x, i) => (
        <div class="card faq-entry" key={i} data-testid="faq-entry">
          <label>
            {t('faq.phrasings')}
            <textarea rows={3} value={x.phrasings} onInput={(e) => set(i, { phrasings: e.currentTarget.value })} />
          </label>
          <label>
            {t('faq.answer')}
            <textarea rows={2} value={x.answer} onInput={(e) => set(i, { answer: e.currentTarget.value })} />
          </label>
          <button type="button" onClick={() => setEntries((old) => old.filter((_, j) => j !== i))}>
            {t('admin.delete')}
          </button>
        </div>
      ))}
      <button type="button" onClick={() => setEntries((old) => [...old, { phrasings: '', answer: '' }])} data-testid="faq-add">
        {t('faq.add')}
      </button>
      <label>
        {t('faq.threshold')}
        <input type="number" min={0} max={1} step={0.05} value={threshold} onInput={(e) => setThreshold(Number(e.currentTarget.value))} />
      </label>
      <label>
        {t('faq.handoff')}
        <textarea rows={4} value={phrases} onInput={(e) => setPhrases(e.currentTarget.value)} data-testid="faq-handoff" />
      </label>
      <button class="primary" type="submit" data-testid="faq-save">
        {t('admin.save')}
      </button>
      {status && <p class="ok">{status}</p>}
      {error && <p class="error">{error}</p>}
    </form>
  );
}

// ------------------------------------------------------------------ in a conversation

/** The banner over a conversation a bot holds: who holds it, and "take over". */
export function BotBanner({ c, onChanged }: { c: Conversation; onChanged: (c: Conversation) => void }) {
  const [error, setError] = useState('');
  if (c.status !== 'bot') return null;
  const take = async () => {
    setError('');
    try {
      await api('POST', `/conversations/${c.id}/take-over`);
      onChanged(await api<Conversation>('GET', `/conversations/${c.id}`));
    } catch (e) {
      setError(message(e));
    }
  };
  return (
    <div class="banner bot" data-testid="bot-banner">
      <span>{t('bot.holding')}</span>
      <button class="primary" onClick={take} data-testid="take-over">
        {t('bot.take_over')}
      </button>
      {error && <span class="error">{error}</span>}
    </div>
  );
}

const STATUS_CLASS: Record<Scheduled['status'], string> = {
  scheduled: 'badge',
  sent: 'badge ok',
  failed: 'badge warn',
  blocked_by_window: 'badge warn',
  cancelled: 'badge muted',
};

/** The side panel's automation section: auto-reply, captured fields, scheduled flows. */
export function AutomationPanel({ c }: { c: Conversation }) {
  const [state, setState] = useState<AutomationState | null>(null);
  const [scheduled, setScheduled] = useState<Scheduled[]>([]);
  const [flows, setFlows] = useState<StoredFlow[]>([]);
  const [form, setForm] = useState({ flow_id: '', delay_hours: 24, from: '', to: '' });
  const [forecast, setForecast] = useState<Scheduled['window'] | null>(null);
  const [error, setError] = useState('');
  const load = async () => {
    setState(await api<AutomationState>('GET', `/conversations/${c.id}/automation`));
    setScheduled((await api<{ items: Scheduled[] }>('GET', `/contacts/${c.contact_id}/scheduled-flows`)).items);
  };
  useEffect(() => {
    load().catch((e) => setError(message(e)));
    listFlows()
      .then((all) => setFlows(all.filter((f) => f.flow.triggers.some((tr) => tr.type === 'scheduled_due'))))
      .catch(() => setFlows([]));
  }, [c.id, c.status, c.version]);
  const body = (dry: boolean) => ({
    flow_id: form.flow_id,
    conversation_id: c.id,
    delay_secs: Math.round(form.delay_hours * 3600),
    within_hours: form.from && form.to ? { from: form.from, to: form.to } : null,
    dry_run: dry,
  });
  // The window's forecast for the chosen time, before saving.
  useEffect(() => {
    if (!form.flow_id) return setForecast(null);
    api<Scheduled>('POST', `/contacts/${c.contact_id}/scheduled-flows`, body(true))
      .then((s) => setForecast(s.window ?? null))
      .catch(() => setForecast(null));
  }, [form.flow_id, form.delay_hours, form.from, form.to]);
  const act = async (f: () => Promise<unknown>) => {
    setError('');
    try {
      await f();
      await load();
    } catch (e) {
      setError(message(e));
    }
  };
  const attach = (e: Event) => {
    e.preventDefault();
    if (forecast && forecast.allowed !== 'open' && !window.confirm(t('sched.confirm_blocked'))) return;
    act(() => api('POST', `/contacts/${c.contact_id}/scheduled-flows`, body(false)));
  };
  return (
    <section class="automation" data-testid="automation-panel">
      <h4>{t('side.automation')}</h4>
      {state && (
        <label class="switch">
          <input type="checkbox" checked={state.auto_reply} onChange={(e) => act(() => api('PUT', `/conversations/${c.id}/auto-reply`, { on: e.currentTarget.checked }))} data-testid="auto-reply" />
          {t('bot.auto_reply')}
        </label>
      )}
      {state && Object.keys(state.fields).length > 0 && (
        <dl class="fields" data-testid="captured-fields">
          {Object.entries(state.fields).map(([k, v]) => (
            <div key={k}>
              <dt>{k}</dt>
              <dd>{v}</dd>
            </div>
          ))}
        </dl>
      )}
      <h4>{t('sched.title')}</h4>
      <ul class="scheduled" data-testid="scheduled-list">
        {scheduled.map((s) => (
          <li key={s.id} data-testid="scheduled-item">
            <b>{s.flow_name ?? '—'}</b> · {t('sched.send_at')} {formatTime(s.send_at)}{' '}
            <span class={STATUS_CLASS[s.status]} data-testid="scheduled-status">
              {t(`sched.status.${s.status}` as Key)}
            </span>
            {s.reason && <span class="muted"> · {errorText(s.reason, s.reason)}</span>}
            <span class="muted"> · {t('sched.attached')} {formatTime(s.attached_at)}</span>
            {s.status === 'scheduled' && (
              <>
                <button class="small" onClick={() => act(() => api('POST', `/scheduled-flows/${s.id}/send-now`))} data-testid="scheduled-send-now">
                  {t('sched.send_now')}
                </button>
                <button class="small" onClick={() => act(() => api('POST', `/scheduled-flows/${s.id}/cancel`))}>
                  {t('sched.cancel')}
                </button>
              </>
            )}
          </li>
        ))}
      </ul>
      {flows.length > 0 && (
        <form class="attach" onSubmit={attach} data-testid="scheduled-form">
          <select value={form.flow_id} onChange={(e) => setForm({ ...form, flow_id: e.currentTarget.value })} data-testid="scheduled-flow" aria-label={t('sched.flow')}>
            <option value="">{t('sched.flow')}</option>
            {flows.map((f) => (
              <option key={f.id} value={f.id}>
                {f.name}
              </option>
            ))}
          </select>
          <label>
            {t('sched.after_hours')}
            <input type="number" min={0} step={0.5} value={form.delay_hours} onInput={(e) => setForm({ ...form, delay_hours: Number(e.currentTarget.value) || 0 })} data-testid="scheduled-delay" />
          </label>
          <label>
            {t('sched.within')}
            <input type="time" value={form.from} onInput={(e) => setForm({ ...form, from: e.currentTarget.value })} aria-label={t('sched.from')} />
            <input type="time" value={form.to} onInput={(e) => setForm({ ...form, to: e.currentTarget.value })} aria-label={t('sched.to')} />
          </label>
          {forecast && (
            <p class={forecast.allowed === 'open' ? 'ok' : 'warn'} data-testid="scheduled-forecast">
              {t(`sched.window.${forecast.allowed}` as Key)}
            </p>
          )}
          <button class="primary" type="submit" disabled={!form.flow_id} data-testid="scheduled-attach">
            {t('sched.attach')}
          </button>
        </form>
      )}
      {error && <p class="error">{error}</p>}
      {canSupervise() && flows.length === 0 && <p class="muted">{t('sched.no_flows')}</p>}
    </section>
  );
}
