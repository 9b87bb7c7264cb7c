// The visual flow editor: the flow's settings, its triggers and its steps as cards, every field
// with its own input, targets chosen from the flow's steps, and each problem (the editor's own
// and the server's `/flows/check`) beside the field it concerns. It edits the flow's JSON object
// and nothing else: the "Advanced (JSON)" tab shows the same object.

import { ComponentChildren, JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Key, t } from './i18n';
import { useShared } from './store';
import {
  ANSWER_KINDS,
  CHANNELS,
  Claims,
  COMPARE_OPS,
  CONDITION_KINDS,
  FIELD_NAME,
  FlowJson,
  FlowProblem,
  freshId,
  hasNext,
  HTTP_METHODS,
  KEYWORD_MODES,
  LIMITS,
  MEDIA_KINDS,
  newAction,
  newCondition,
  newTrigger,
  Obj,
  payloadFor,
  renameStep,
  splitDuration,
  STEP_ID,
  STEP_KINDS,
  targets,
  TRIGGER_KINDS,
  UNITS,
} from './flow-model';

/** A flow the editor may name in start/schedule/cancel steps. */
export interface FlowRef {
  id: string;
  name: string;
}

type Take = (rel: string) => FlowProblem[];

/** `obj` with `patch` applied; keys patched to `undefined` are removed (the JSON leaves them out). */
function merge<T extends Obj>(obj: T, patch: Obj): T {
  const out: Obj = { ...obj, ...patch };
  for (const k of Object.keys(patch)) if (patch[k] === undefined) delete out[k];
  return out as T;
}

const replaceAt = <T,>(list: T[], i: number, v: T) => list.map((x, j) => (j === i ? v : x));
const removeAt = <T,>(list: T[], i: number) => list.filter((_, j) => j !== i);

let uid = 0;
/** A unique id for tying a hint or a problem list to its input. */
function useUid(prefix: string): string {
  const [id] = useState(() => `${prefix}-${++uid}`);
  return id;
}

// ------------------------------------------------------------------ small pieces

/** The problems of one field, under it. `strip`: the path shown before a problem's message. */
export function Problems({ list, strip }: { list: FlowProblem[]; strip?: string }) {
  if (list.length === 0) return null;
  return (
    <ul class="fe-problems">
      {list.map((p, i) => {
        const where = strip !== undefined ? p.path.slice(strip.length).replace(/^\./, '') : '';
        return (
          <li key={i} class="field-error" data-testid="flow-problem" data-path={p.path}>
            {where ? `${where}: ` : ''}
            {p.message}
          </li>
        );
      })}
    </ul>
  );
}

function TextField(props: { label: string; value: string | undefined; onInput: (v: string) => void; problems?: FlowProblem[]; testid?: string; multiline?: boolean; placeholder?: string; hint?: string; list?: string; maxLength?: number }) {
  const bad = (props.problems?.length ?? 0) > 0;
  const common = {
    value: props.value ?? '',
    'aria-invalid': bad ? ('true' as const) : undefined,
    'data-testid': props.testid,
    placeholder: props.placeholder,
    maxLength: props.maxLength,
  };
  return (
    <div class="fe-field">
      <label>
        {props.label}
        {props.multiline ? (
          <textarea rows={2} {...common} onInput={(e) => props.onInput(e.currentTarget.value)} />
        ) : (
          <input {...common} list={props.list} onInput={(e) => props.onInput(e.currentTarget.value)} />
        )}
      </label>
      {props.hint && <p class="hint">{props.hint}</p>}
      <Problems list={props.problems ?? []} />
    </div>
  );
}

function NumberField(props: { label: string; value: number | undefined; onChange: (v: number | undefined) => void; min?: number; max?: number; problems?: FlowProblem[]; testid?: string; hint?: string }) {
  return (
    <div class="fe-field">
      <label>
        {props.label}
        <input
          type="number"
          class="fe-number"
          min={props.min}
          max={props.max}
          value={props.value ?? ''}
          aria-invalid={(props.problems?.length ?? 0) > 0 ? 'true' : undefined}
          data-testid={props.testid}
          onInput={(e) => {
            const v = e.currentTarget.value;
            props.onChange(v === '' ? undefined : Math.max(0, Math.round(Number(v))));
          }}
        />
      </label>
      {props.hint && <p class="hint">{props.hint}</p>}
      <Problems list={props.problems ?? []} />
    </div>
  );
}

/** A list of short texts, one a line (keywords, payloads, tags…). */
function LinesField(props: { label: string; values: string[]; onChange: (v: string[]) => void; problems?: FlowProblem[]; testid?: string; hint?: string }) {
  const parse = (s: string) =>
    s
      .split('\n')
      .map((x) => x.trim())
      .filter(Boolean);
  const [text, setText] = useState(props.values.join('\n'));
  useEffect(() => {
    if (parse(text).join('\n') !== props.values.join('\n')) setText(props.values.join('\n'));
  }, [props.values.join('\n')]);
  const hint = useUid('hint');
  return (
    <div class="fe-field">
      <label>
        {props.label}
        <textarea
          rows={Math.min(6, Math.max(2, props.values.length + 1))}
          value={text}
          aria-describedby={hint}
          aria-invalid={(props.problems?.length ?? 0) > 0 ? 'true' : undefined}
          data-testid={props.testid}
          onInput={(e) => {
            setText(e.currentTarget.value);
            props.onChange(parse(e.currentTarget.value));
          }}
        />
      </label>
      <p class="hint" id={hint}>
        {props.hint ?? t('fe.one_per_line')}
      </p>
      <Problems list={props.problems ?? []} />
    </div>
  );
}

/** A duration in seconds, written as a number and a unit. */
function DurationField(props: { label: string; value: number | undefined; onChange: (v: number | undefined) => void; optional?: boolean; problems?: FlowProblem[]; testid?: string; hint?: string }) {
  const [unit, setUnit] = useState(props.value ? splitDuration(props.value)[1] : 3600);
  const [num, setNum] = useState(props.value !== undefined ? String(props.value / unit) : '');
  const secs = (n: string, u: number) => (n === '' ? (props.optional ? undefined : 0) : Math.max(0, Math.round(Number(n) * u)));
  useEffect(() => {
    if (secs(num, unit) === props.value) return;
    if (props.value === undefined) setNum('');
    else {
      const [n, u] = splitDuration(props.value);
      setNum(String(n));
      setUnit(u);
    }
  }, [props.value]);
  const push = (n: string, u: number) => {
    setNum(n);
    setUnit(u);
    props.onChange(secs(n, u));
  };
  const unitLabel = `${props.label}: ${t('fe.unit')}`;
  return (
    <div class="fe-field">
      <div class="row fe-duration">
        <label class="grow">
          {props.label}
          <input
            type="number"
            min={0}
            step="any"
            value={num}
            placeholder={props.optional ? t('fe.none') : undefined}
            aria-invalid={(props.problems?.length ?? 0) > 0 ? 'true' : undefined}
            data-testid={props.testid}
            onInput={(e) => push(e.currentTarget.value, unit)}
          />
        </label>
        <select aria-label={unitLabel} value={unit} onChange={(e) => push(num, Number(e.currentTarget.value))} data-testid={props.testid ? `${props.testid}-unit` : undefined}>
          {UNITS.map(([name, secs]) => (
            <option key={name} value={secs}>
              {t(`fe.unit.${name}` as Key)}
            </option>
          ))}
        </select>
      </div>
      {props.hint && <p class="hint">{props.hint}</p>}
      <Problems list={props.problems ?? []} />
    </div>
  );
}

interface StepRef {
  id: string;
  kind: string;
}

/** Where a step leads: one of the flow's steps, or (when optional) nowhere: the run ends. */
function TargetSelect(props: { label: string; value: string | undefined; onChange: (v: string | undefined) => void; steps: StepRef[]; self?: string; optional?: boolean; emptyLabel?: string; problems?: FlowProblem[]; testid?: string }) {
  const v = props.value ?? '';
  const known = props.steps.some((s) => s.id === v);
  return (
    <div class="fe-field">
      <label>
        {props.label}
        <select
          value={v}
          data-testid={props.testid}
          aria-invalid={(props.problems?.length ?? 0) > 0 ? 'true' : undefined}
          onChange={(e) => {
            const x = e.currentTarget.value;
            props.onChange(x === '' && props.optional ? undefined : x);
          }}
        >
          <option value="">{props.emptyLabel ?? (props.optional ? t('fe.end_run') : t('fe.choose_step'))}</option>
          {props.steps.map((s) => (
            <option key={s.id} value={s.id}>
              {s.id} · {t(`step.${s.kind}` as Key) ?? s.kind}
              {s.id === props.self ? ` (${t('fe.this_step')})` : ''}
            </option>
          ))}
          {v !== '' && !known && <option value={v}>{t('fe.missing_step', { id: v })}</option>}
        </select>
      </label>
      <Problems list={props.problems ?? []} />
    </div>
  );
}

function FlowSelect(props: { value: string; onChange: (v: string) => void; flows: FlowRef[]; problems: FlowProblem[] }) {
  const known = props.flows.some((f) => f.id === props.value);
  return (
    <div class="fe-field">
      <label>
        {t('fe.flow')}
        <select value={props.value} onChange={(e) => props.onChange(e.currentTarget.value)} data-testid="step-flow" aria-invalid={props.problems.length > 0 ? 'true' : undefined}>
          <option value="">{t('fe.choose_flow')}</option>
          {props.flows.map((f) => (
            <option key={f.id} value={f.id}>
              {f.name}
            </option>
          ))}
          {props.value && !known && <option value={props.value}>{props.value}</option>}
        </select>
      </label>
      <Problems list={props.problems} />
    </div>
  );
}

/** The value of a JSON body; written as JSON, kept as the object. */
function JsonField(props: { label: string; value: unknown; onChange: (v: unknown) => void; problems: FlowProblem[] }) {
  const show = (v: unknown) => (v === undefined ? '' : JSON.stringify(v, null, 2));
  const [text, setText] = useState(show(props.value));
  const [bad, setBad] = useState(false);
  useEffect(() => {
    let mine: unknown;
    try {
      mine = text.trim() === '' ? undefined : JSON.parse(text);
    } catch {
      return;
    }
    if (JSON.stringify(mine) !== JSON.stringify(props.value)) {
      setText(show(props.value));
      setBad(false);
    }
  }, [JSON.stringify(props.value)]);
  return (
    <div class="fe-field">
      <label>
        {props.label}
        <textarea
          class="code"
          rows={4}
          spellcheck={false}
          value={text}
          aria-invalid={bad || props.problems.length > 0 ? 'true' : undefined}
          data-testid="http-body"
          onInput={(e) => {
            const s = e.currentTarget.value;
            setText(s);
            try {
              props.onChange(s.trim() === '' ? undefined : JSON.parse(s));
              setBad(false);
            } catch {
              setBad(true);
            }
          }}
        />
      </label>
      {bad && <p class="field-error" data-testid="flow-problem">{t('fe.body_not_json')}</p>}
      <Problems list={props.problems} />
    </div>
  );
}

/** A step's id, renamed everywhere when the input is left (never to an id already used). */
function IdField({ id, onRename, problems }: { id: string; onRename: (to: string) => string; problems: FlowProblem[] }) {
  const [draft, setDraft] = useState(id);
  const [error, setError] = useState('');
  useEffect(() => {
    setDraft(id);
    setError('');
  }, [id]);
  const commit = () => {
    if (draft === id) return setError('');
    setError(onRename(draft.trim()));
  };
  return (
    <div class="fe-field fe-id">
      <label>
        {t('fe.step_id')}
        <input
          value={draft}
          maxLength={40}
          data-testid="step-id"
          aria-invalid={error || problems.length ? 'true' : undefined}
          onInput={(e) => setDraft(e.currentTarget.value)}
          onChange={commit}
          onKeyDown={(e) => e.key === 'Enter' && (e.preventDefault(), commit())}
        />
      </label>
      {error && <p class="field-error" data-testid="flow-problem">{error}</p>}
      <Problems list={problems} />
    </div>
  );
}

function Group({ legend, children, testid }: { legend: string; children: ComponentChildren; testid?: string }) {
  return (
    <fieldset class="fe-group" data-testid={testid}>
      <legend>{legend}</legend>
      {children}
    </fieldset>
  );
}

// ------------------------------------------------------------------ messages and conditions

/** A message (a send step's variant, a question): text, an optional file, buttons. */
function messageFields(m: Obj, set: (m: Obj) => void, at: string, take: Take, opts: { label: string; buttons: boolean; testid: string }) {
  const buttons: Obj[] = m.buttons ?? [];
  const setButtons = (b: Obj[]) => set(merge(m, { buttons: b.length ? b : undefined }));
  return (
    <div class="fe-message">
      <TextField label={opts.label} multiline value={m.text} onInput={(v) => set(merge(m, { text: v === '' && m.media ? undefined : v }))} problems={take(`${at}.text`)} testid={`${opts.testid}-text`} hint={t('fe.variables_hint')} />
      <label class="check">
        <input type="checkbox" checked={!!m.media} onChange={(e) => set(merge(m, { media: e.currentTarget.checked ? { kind: 'image', url: '' } : undefined }))} data-testid="media-toggle" />
        {t('fe.attach_file')}
      </label>
      {m.media && (
        <div class="row wrap">
          <label>
            {t('fe.media_kind')}
            <select value={m.media.kind} onChange={(e) => set(merge(m, { media: { ...m.media, kind: e.currentTarget.value } }))}>
              {MEDIA_KINDS.map((k) => (
                <option key={k} value={k}>
                  {t(`fe.media.${k}` as Key)}
                </option>
              ))}
            </select>
          </label>
          <div class="grow">
            <TextField label={t('fe.media_url')} value={m.media.url} onInput={(v) => set(merge(m, { media: { ...m.media, url: v } }))} problems={take(`${at}.media`)} placeholder="https://" />
          </div>
        </div>
      )}
      {opts.buttons && (
        <Group legend={t('fe.buttons')} testid="buttons">
          {buttons.length === 0 && <p class="hint">{t('fe.buttons_hint')}</p>}
          {buttons.map((b, j) => (
            <div class="fe-row" key={j} data-testid="button-row">
              <TextField
                label={t('fe.button_title', { n: j + 1 })}
                value={b.title}
                maxLength={80}
                testid="button-title"
                problems={take(`${at}.buttons[${j}].title`)}
                onInput={(v) => setButtons(replaceAt(buttons, j, { ...b, title: v, payload: !b.payload || b.payload === payloadFor(b.title ?? '') ? payloadFor(v) : b.payload }))}
              />
              <TextField label={t('fe.button_payload', { n: j + 1 })} value={b.payload} testid="button-payload" problems={take(`${at}.buttons[${j}]`)} onInput={(v) => setButtons(replaceAt(buttons, j, { ...b, payload: v }))} />
              <button type="button" class="link danger" onClick={() => setButtons(removeAt(buttons, j))} aria-label={t('fe.remove_button', { n: j + 1 })}>
                ✕
              </button>
            </div>
          ))}
          <Problems list={take(`${at}.buttons`)} />
          {buttons.length < LIMITS.buttons && !m.media && (
            <button type="button" class="small" onClick={() => setButtons([...buttons, { title: '', payload: '' }])} data-testid="button-add">
              + {t('fe.add_button')}
            </button>
          )}
        </Group>
      )}
      <Problems list={take(at)} />
    </div>
  );
}

function conditionFields(c: Obj, set: (c: Obj) => void, at: string, take: Take, depth: number, tagList: string): JSX.Element {
  const kinds = depth >= LIMITS.depth ? CONDITION_KINDS.filter((k) => !['all', 'any', 'not'].includes(k)) : CONDITION_KINDS;
  const body = (() => {
    switch (c.type) {
      case 'field': {
        const needs = !['is_set', 'is_empty'].includes(c.op);
        return (
          <div class="fe-row">
            <TextField label={t('fe.cond_field')} value={c.field} list="fe-fields" onInput={(v) => set({ ...c, field: v })} problems={take(`${at}.field`)} testid="cond-field" />
            <label>
              {t('fe.cond_op')}
              <select value={c.op} onChange={(e) => set(merge(c, { op: e.currentTarget.value, value: ['is_set', 'is_empty'].includes(e.currentTarget.value) ? undefined : c.value ?? '' }))} data-testid="cond-op">
                {COMPARE_OPS.map((o) => (
                  <option key={o} value={o}>
                    {t(`fe.op.${o}` as Key)}
                  </option>
                ))}
              </select>
            </label>
            {needs && <TextField label={t('fe.cond_value')} value={c.value} onInput={(v) => set({ ...c, value: v })} problems={take(`${at}.value`)} testid="cond-value" />}
          </div>
        );
      }
      case 'has_tag':
        return <TextField label={t('fe.tag')} value={c.tag} list={tagList} onInput={(v) => set({ ...c, tag: v })} problems={take(`${at}.tag`)} testid="cond-tag" />;
      case 'channel': {
        const chosen: string[] = c.channels ?? [];
        return (
          <Group legend={t('fe.cond_channels')}>
            <div class="row wrap">
              {CHANNELS.map((ch) => (
                <label class="check" key={ch}>
                  <input type="checkbox" checked={chosen.includes(ch)} onChange={(e) => set({ ...c, channels: e.currentTarget.checked ? [...chosen, ch] : chosen.filter((x) => x !== ch) })} />
                  {ch}
                </label>
              ))}
            </div>
            <Problems list={take(`${at}.channels`)} />
          </Group>
        );
      }
      case 'all':
      case 'any': {
        const of: Obj[] = c.of ?? [];
        return (
          <div class="fe-nested">
            {of.map((x, i) => (
              <div key={i} class="fe-nested-item">
                {conditionFields(x, (nx) => set({ ...c, of: replaceAt(of, i, nx) }), `${at}.of[${i}]`, take, depth + 1, tagList)}
                {of.length > 1 && (
                  <button type="button" class="link danger" onClick={() => set({ ...c, of: removeAt(of, i) })}>
                    {t('fe.remove_condition')}
                  </button>
                )}
              </div>
            ))}
            <Problems list={take(`${at}.of`)} />
            {of.length < LIMITS.paths && (
              <button type="button" class="small" onClick={() => set({ ...c, of: [...of, newCondition('field')] })}>
                + {t('fe.add_condition')}
              </button>
            )}
          </div>
        );
      }
      case 'not':
        return <div class="fe-nested">{conditionFields(c.of ?? newCondition('has_tag'), (nx) => set({ ...c, of: nx }), `${at}.of`, take, depth + 1, tagList)}</div>;
      default:
        return null;
    }
  })();
  return (
    <div class="fe-cond">
      <label>
        {t('fe.condition')}
        <select value={c.type} onChange={(e) => set(newCondition(e.currentTarget.value))} data-testid="cond-type">
          {kinds.map((k) => (
            <option key={k} value={k}>
              {t(`fe.cond.${k}` as Key)}
            </option>
          ))}
        </select>
      </label>
      {body}
      <Problems list={take(at)} strip={at} />
    </div>
  );
}

// ------------------------------------------------------------------ triggers

function TriggerCard({ tr, i, set, remove, problems }: { tr: Obj; i: number; set: (t: Obj) => void; remove: () => void; problems: FlowProblem[] }) {
  const at = `triggers[${i}]`;
  const claims = new Claims(problems);
  const take = (p: string) => claims.take(p);
  const fields = (() => {
    switch (tr.type) {
      case 'keyword':
        return (
          <>
            <label>
              {t('fe.match')}
              <select value={tr.match} onChange={(e) => set({ ...tr, match: e.currentTarget.value })} data-testid="trigger-match">
                {KEYWORD_MODES.map((m) => (
                  <option key={m} value={m}>
                    {t(`fe.match.${m}` as Key)}
                  </option>
                ))}
              </select>
            </label>
            <LinesField label={tr.match === 'regex' ? t('fe.patterns') : t('fe.keywords')} values={tr.keywords ?? []} onChange={(v) => set({ ...tr, keywords: v })} problems={take(`${at}.keywords`)} testid="trigger-keywords" />
            <label class="check">
              <input type="checkbox" checked={tr.ignore_diacritics !== false} onChange={(e) => set(merge(tr, { ignore_diacritics: e.currentTarget.checked ? undefined : false }))} />
              {t('fe.ignore_diacritics')}
            </label>
          </>
        );
      case 'payload':
        return <LinesField label={t('fe.payloads')} values={tr.payloads ?? []} onChange={(v) => set({ ...tr, payloads: v })} problems={take(`${at}.payloads`)} testid="trigger-values" />;
      case 'referral':
        return <LinesField label={t('fe.refs')} hint={t('fe.empty_any')} values={tr.refs ?? []} onChange={(v) => set(merge(tr, { refs: v.length ? v : undefined }))} problems={take(`${at}.refs`)} testid="trigger-values" />;
      case 'tag_added':
        return <LinesField label={t('fe.tags')} hint={t('fe.empty_any')} values={tr.tags ?? []} onChange={(v) => set(merge(tr, { tags: v.length ? v : undefined }))} problems={take(`${at}.tags`)} testid="trigger-values" />;
      case 'field_changed':
        return <LinesField label={t('fe.fields')} hint={t('fe.empty_any')} values={tr.fields ?? []} onChange={(v) => set(merge(tr, { fields: v.length ? v : undefined }))} problems={take(`${at}.fields`)} testid="trigger-values" />;
      default:
        return null;
    }
  })();
  return (
    <li class="card fe-trigger" data-testid="flow-trigger">
      <div class="row wrap">
        <label class="grow">
          {t('fe.trigger_kind', { n: i + 1 })}
          <select value={tr.type} onChange={(e) => set(newTrigger(e.currentTarget.value))} data-testid="trigger-kind">
            {TRIGGER_KINDS.map((k) => (
              <option key={k} value={k}>
                {t(`fe.trig.${k}` as Key)}
              </option>
            ))}
          </select>
        </label>
        <button type="button" class="link danger" onClick={remove} data-testid="trigger-remove" aria-label={t('fe.remove_trigger', { n: i + 1 })}>
          {t('admin.delete')}
        </button>
      </div>
      <p class="hint">{t(`fe.trig_hint.${tr.type}` as Key) ?? ''}</p>
      {fields}
      <Problems list={claims.rest()} strip={at} />
    </li>
  );
}

// ------------------------------------------------------------------ steps

interface StepProps {
  step: { id: string; do: Obj };
  index: number;
  count: number;
  isStart: boolean;
  steps: StepRef[];
  from: string[];
  problems: FlowProblem[];
  flows: FlowRef[];
  set: (a: Obj) => void;
  rename: (to: string) => string;
  move: (d: -1 | 1) => void;
  remove: () => void;
  makeStart: () => void;
}

function StepCard(p: StepProps) {
  const { step } = p;
  const a = step.do;
  const at = `steps[${step.id}]`;
  const claims = new Claims(p.problems);
  const take: Take = (path) => claims.take(path);
  const setDo = (patch: Obj) => p.set(merge(a, patch));
  const target = (field: string, label: string, opts: { optional?: boolean; emptyLabel?: string; testid?: string } = {}) => (
    <TargetSelect
      label={label}
      value={a[field]}
      onChange={(v) => setDo({ [field]: v })}
      steps={p.steps}
      self={step.id}
      optional={opts.optional ?? true}
      emptyLabel={opts.emptyLabel}
      problems={take(`${at}.${field}`)}
      testid={opts.testid ?? `step-${field.replace(/_/g, '-')}`}
    />
  );
  const idProblems = take(`${at}.id`);
  const body = stepBody(a, setDo, at, take, target, p);
  const rest = claims.rest();
  const headId = `step-head-${p.index}`;
  return (
    <li class={rest.length || p.problems.length ? 'card fe-step bad' : 'card fe-step'} data-testid="flow-step" data-step-id={step.id} aria-labelledby={headId}>
      <div class="fe-step-head">
        <h4 id={headId}>
          {p.index + 1}. {t(`fe.kind.${a.type}` as Key) ?? a.type}
        </h4>
        {p.isStart ? (
          <span class="badge ok" data-testid="step-is-start">
            {t('fe.start_badge')}
          </span>
        ) : (
          <button type="button" class="small" onClick={p.makeStart} data-testid="step-start">
            {t('fe.make_start')}
          </button>
        )}
        <span class="fe-step-tools">
          <button type="button" class="icon-small" onClick={() => p.move(-1)} disabled={p.index === 0} aria-label={t('fe.move_up', { id: step.id })} data-testid="step-up">
            ↑
          </button>
          <button type="button" class="icon-small" onClick={() => p.move(1)} disabled={p.index === p.count - 1} aria-label={t('fe.move_down', { id: step.id })} data-testid="step-down">
            ↓
          </button>
          <button type="button" class="icon-small danger-text" onClick={p.remove} aria-label={t('fe.delete_step', { id: step.id })} data-testid="step-delete">
            ✕
          </button>
        </span>
      </div>
      <div class="fe-row">
        <IdField id={step.id} onRename={p.rename} problems={idProblems} />
        <label>
          {t('fe.step_kind')}
          <select value={a.type} onChange={(e) => changeKind(e.currentTarget, a, p.set)} data-testid="step-kind">
            {STEP_KINDS.map((k) => (
              <option key={k} value={k}>
                {t(`fe.kind.${k}` as Key)}
              </option>
            ))}
            {!(STEP_KINDS as readonly string[]).includes(a.type) && <option value={a.type}>{a.type}</option>}
          </select>
        </label>
      </div>
      {p.from.length > 0 && <p class="hint">{t('fe.reached_from', { ids: p.from.join(', ') })}</p>}
      {body}
      <Problems list={rest} strip={at} />
    </li>
  );
}

/** Another kind for a step: its fields start afresh (asked first when it had some), its way on is kept. */
function changeKind(select: HTMLSelectElement, a: Obj, set: (a: Obj) => void) {
  const kind = select.value;
  const { next, ...rest } = a;
  if (JSON.stringify(rest) !== JSON.stringify(newAction(a.type)) && !window.confirm(t('fe.change_kind_confirm'))) {
    select.value = a.type;
    return;
  }
  const fresh = newAction(kind);
  set(hasNext(kind) && typeof next === 'string' ? { ...fresh, next } : fresh);
}

function stepBody(a: Obj, setDo: (patch: Obj) => void, at: string, take: Take, target: (field: string, label: string, opts?: { optional?: boolean; emptyLabel?: string; testid?: string }) => JSX.Element, p: StepProps) {
  const then = () => target('next', t('fe.then'));
  switch (a.type) {
    case 'send_message': {
      const variants: Obj[] = a.variants ?? [];
      return (
        <>
          {variants.map((m, i) => (
            <div class="fe-variant" key={i} data-testid="variant">
              {variants.length > 1 && (
                <div class="row">
                  <b class="grow">{t('fe.variant', { n: i + 1 })}</b>
                  <button type="button" class="link danger" onClick={() => setDo({ variants: removeAt(variants, i) })} data-testid="variant-remove">
                    {t('fe.remove_variant', { n: i + 1 })}
                  </button>
                </div>
              )}
              {messageFields(m, (nm) => setDo({ variants: replaceAt(variants, i, nm) }), `${at}.variants[${i}]`, take, { label: t('fe.message_text'), buttons: true, testid: 'variant' })}
            </div>
          ))}
          {variants.length > 1 && <p class="hint">{t('fe.variants_hint')}</p>}
          <Problems list={take(`${at}.variants`)} />
          {variants.length < LIMITS.variants && (
            <button type="button" class="small" onClick={() => setDo({ variants: [...variants, { text: '' }] })} data-testid="variant-add">
              + {t('fe.add_variant')}
            </button>
          )}
          {then()}
        </>
      );
    }
    case 'ask': {
      const choice = a.answer?.type === 'choice';
      const choices: Obj[] = a.answer?.choices ?? [];
      const setChoices = (cs: Obj[]) => setDo({ answer: { ...a.answer, choices: cs } });
      return (
        <>
          {messageFields(a.question ?? {}, (q) => setDo({ question: q }), `${at}.question`, take, { label: t('fe.question'), buttons: !choice, testid: 'ask-question' })}
          <label>
            {t('fe.answer_kind')}
            <select
              value={a.answer?.type}
              data-testid="ask-type"
              onChange={(e) => {
                const k = e.currentTarget.value;
                setDo({
                  answer: k === 'choice' ? { type: k, choices: [{ title: '', value: '' }, { title: '', value: '' }] } : { type: k },
                  question: k === 'choice' ? merge(a.question ?? {}, { buttons: undefined }) : a.question,
                });
              }}
            >
              {ANSWER_KINDS.map((k) => (
                <option key={k} value={k}>
                  {t(`fe.answer.${k}` as Key)}
                </option>
              ))}
            </select>
          </label>
          {choice && (
            <Group legend={t('fe.choices')} testid="choices">
              {choices.map((c, i) => (
                <div class="fe-row" key={i} data-testid="choice-row">
                  <TextField label={t('fe.choice_title', { n: i + 1 })} value={c.title} maxLength={80} testid="choice-title" problems={take(`${at}.answer.choices[${i}].title`)} onInput={(v) => setChoices(replaceAt(choices, i, { ...c, title: v, value: !c.value || c.value === c.title ? v : c.value }))} />
                  <TextField label={t('fe.choice_value', { n: i + 1 })} value={c.value} testid="choice-value" problems={take(`${at}.answer.choices[${i}].value`)} onInput={(v) => setChoices(replaceAt(choices, i, { ...c, value: v }))} />
                  <TargetSelect label={t('fe.choice_next', { n: i + 1 })} value={c.next} onChange={(v) => setChoices(replaceAt(choices, i, merge(c, { next: v })))} steps={p.steps} self={p.step.id} optional emptyLabel={t('fe.same_as_next')} problems={take(`${at}.answer.choices[${i}]`)} testid="choice-next" />
                  {choices.length > 2 && (
                    <button type="button" class="link danger" onClick={() => setChoices(removeAt(choices, i))} aria-label={t('fe.remove_choice', { n: i + 1 })}>
                      ✕
                    </button>
                  )}
                </div>
              ))}
              <Problems list={take(`${at}.answer`)} />
              {choices.length < LIMITS.choices && (
                <button type="button" class="small" onClick={() => setChoices([...choices, { title: '', value: '' }])} data-testid="choice-add">
                  + {t('fe.add_choice')}
                </button>
              )}
            </Group>
          )}
          <TextField label={t('fe.save_to')} value={a.save_to} list="fe-fields" onInput={(v) => setDo({ save_to: v })} problems={take(`${at}.save_to`)} testid="ask-save-to" hint={t('fe.field_hint')} />
          <div class="fe-row">
            <NumberField label={t('fe.retries')} value={a.retries} min={0} max={LIMITS.retries} onChange={(v) => setDo({ retries: v ?? 0 })} problems={take(`${at}.retries`)} testid="ask-retries" />
            <DurationField label={t('fe.timeout')} value={a.timeout_secs} optional onChange={(v) => setDo({ timeout_secs: v })} problems={take(`${at}.timeout_secs`)} testid="ask-timeout" />
          </div>
          <TextField label={t('fe.retry_text')} multiline value={a.retry_text} onInput={(v) => setDo({ retry_text: v === '' ? undefined : v })} problems={take(`${at}.retry_text`)} testid="ask-retry-text" hint={t('fe.retry_hint')} />
          {target('next', t('fe.then_answered'))}
          {target('timeout_next', t('fe.timeout_next'), { testid: 'ask-timeout-next' })}
        </>
      );
    }
    case 'add_tag':
    case 'remove_tag':
      return (
        <>
          <TextField label={t('fe.tag')} value={a.tag} list="fe-tags" onInput={(v) => setDo({ tag: v })} problems={take(`${at}.tag`)} testid="step-tag" />
          {then()}
        </>
      );
    case 'set_field':
      return (
        <>
          <div class="fe-row">
            <TextField label={t('fe.field')} value={a.field} list="fe-fields" onInput={(v) => setDo({ field: v })} problems={take(`${at}.field`)} testid="step-field" />
            <TextField label={t('fe.value')} value={a.value} onInput={(v) => setDo({ value: v })} problems={take(`${at}.value`)} testid="step-value" />
          </div>
          <p class="hint">{t('fe.variables_hint')}</p>
          {then()}
        </>
      );
    case 'branch': {
      const paths: Obj[] = a.paths ?? [];
      return (
        <>
          {paths.map((bp, i) => (
            <Group legend={t('fe.path', { n: i + 1 })} key={i} testid="branch-path">
              {conditionFields(bp.when ?? newCondition('field'), (w) => setDo({ paths: replaceAt(paths, i, { ...bp, when: w }) }), `${at}.paths[${i}].when`, take, 1, 'fe-tags')}
              <TargetSelect label={t('fe.path_next')} value={bp.next} onChange={(v) => setDo({ paths: replaceAt(paths, i, { ...bp, next: v ?? '' }) })} steps={p.steps} self={p.step.id} problems={take(`${at}.paths[${i}]`)} testid="path-next" />
              {paths.length > 1 && (
                <button type="button" class="link danger" onClick={() => setDo({ paths: removeAt(paths, i) })}>
                  {t('fe.remove_path', { n: i + 1 })}
                </button>
              )}
            </Group>
          ))}
          <Problems list={take(`${at}.paths`)} />
          {paths.length < LIMITS.paths && (
            <button type="button" class="small" onClick={() => setDo({ paths: [...paths, { when: newCondition('field'), next: '' }] })} data-testid="path-add">
              + {t('fe.add_path')}
            </button>
          )}
          {target('otherwise', t('fe.otherwise'), { testid: 'branch-otherwise' })}
        </>
      );
    }
    case 'wait': {
      const hours = !!a.until_business_hours;
      return (
        <>
          <Group legend={t('fe.wait_for')}>
            <label class="check">
              <input type="radio" name={`wait-${at}`} checked={!hours} onChange={() => setDo({ seconds: a.seconds ?? 3600, until_business_hours: undefined })} />
              {t('fe.wait_duration')}
            </label>
            <label class="check">
              <input type="radio" name={`wait-${at}`} checked={hours} onChange={() => setDo({ seconds: undefined, until_business_hours: true })} data-testid="wait-hours" />
              {t('fe.wait_hours')}
            </label>
          </Group>
          {!hours && <DurationField label={t('fe.duration')} value={a.seconds} onChange={(v) => setDo({ seconds: v })} problems={take(`${at}.seconds`)} testid="wait-duration" />}
          {then()}
        </>
      );
    }
    case 'split': {
      const paths: Obj[] = a.paths ?? [];
      const total = paths.reduce((s, x) => s + (Number(x.weight) || 0), 0) || 1;
      return (
        <>
          {paths.map((sp, i) => (
            <div class="fe-row" key={i} data-testid="split-path">
              <NumberField label={t('fe.weight', { n: i + 1 })} value={sp.weight} min={1} max={1000} onChange={(v) => setDo({ paths: replaceAt(paths, i, { ...sp, weight: v ?? 0 }) })} problems={take(`${at}.paths[${i}].weight`)} testid="split-weight" hint={`≈ ${Math.round(((Number(sp.weight) || 0) * 100) / total)}%`} />
              <TargetSelect label={t('fe.path_next')} value={sp.next} onChange={(v) => setDo({ paths: replaceAt(paths, i, { ...sp, next: v ?? '' }) })} steps={p.steps} self={p.step.id} problems={take(`${at}.paths[${i}]`)} testid="path-next" />
              {paths.length > 2 && (
                <button type="button" class="link danger" onClick={() => setDo({ paths: removeAt(paths, i) })} aria-label={t('fe.remove_path', { n: i + 1 })}>
                  ✕
                </button>
              )}
            </div>
          ))}
          <Problems list={take(`${at}.paths`)} />
          {paths.length < LIMITS.paths && (
            <button type="button" class="small" onClick={() => setDo({ paths: [...paths, { weight: 50, next: '' }] })} data-testid="path-add">
              + {t('fe.add_path')}
            </button>
          )}
        </>
      );
    }
    case 'http':
      return <HttpFields a={a} setDo={setDo} at={at} take={take} target={target} />;
    case 'handoff':
      return <TextField label={t('fe.note')} multiline value={a.note} onInput={(v) => setDo({ note: v === '' ? undefined : v })} problems={take(`${at}.note`)} testid="handoff-note" hint={t('fe.note_hint')} />;
    case 'faq_bot':
      return (
        <>
          <TextField label={t('fe.fallback')} multiline value={a.fallback} onInput={(v) => setDo({ fallback: v })} problems={take(`${at}.fallback`)} testid="faq-fallback" />
          <NumberField label={t('fe.max_misses')} value={a.max_misses} min={1} max={10} onChange={(v) => setDo({ max_misses: v ?? 1 })} problems={take(`${at}.max_misses`)} testid="faq-misses" hint={t('fe.max_misses_hint')} />
        </>
      );
    case 'start_flow':
      return (
        <>
          <FlowSelect value={a.flow ?? ''} onChange={(v) => setDo({ flow: v })} flows={p.flows} problems={take(`${at}.flow`)} />
          <p class="hint">{t('fe.start_flow_hint')}</p>
        </>
      );
    case 'schedule_flow': {
      const h = a.within_hours as { from: string; to: string } | undefined;
      return (
        <>
          <FlowSelect value={a.flow ?? ''} onChange={(v) => setDo({ flow: v })} flows={p.flows} problems={take(`${at}.flow`)} />
          <DurationField label={t('fe.delay')} value={a.delay_secs} onChange={(v) => setDo({ delay_secs: v ?? 0 })} problems={take(`${at}.delay_secs`)} testid="schedule-delay" />
          <label class="check">
            <input type="checkbox" checked={!!h} onChange={(e) => setDo({ within_hours: e.currentTarget.checked ? { from: '08:00', to: '17:00' } : undefined })} />
            {t('fe.within_hours')}
          </label>
          {h && (
            <div class="row wrap">
              <label>
                {t('fe.from')}
                <input type="time" value={h.from} onInput={(e) => setDo({ within_hours: { ...h, from: e.currentTarget.value } })} />
              </label>
              <label>
                {t('fe.to')}
                <input type="time" value={h.to} onInput={(e) => setDo({ within_hours: { ...h, to: e.currentTarget.value } })} />
              </label>
            </div>
          )}
          <Problems list={take(`${at}.within_hours`)} />
          {then()}
        </>
      );
    }
    case 'cancel_scheduled_flow':
      return (
        <>
          <FlowSelect value={a.flow ?? ''} onChange={(v) => setDo({ flow: v })} flows={p.flows} problems={take(`${at}.flow`)} />
          {then()}
        </>
      );
    case 'resolve':
    case 'stop':
      return <p class="hint">{t(`fe.hint.${a.type}` as Key)}</p>;
    default:
      return (
        <>
          <p class="hint">{t('fe.unknown_kind')}</p>
          <pre class="code">{JSON.stringify(a, null, 2)}</pre>
        </>
      );
  }
}

function HttpFields({ a, setDo, at, take, target }: { a: Obj; setDo: (patch: Obj) => void; at: string; take: Take; target: (field: string, label: string, opts?: { optional?: boolean; emptyLabel?: string; testid?: string }) => JSX.Element }) {
  const headers = Object.entries((a.headers ?? {}) as Record<string, string>);
  const setHeaders = (rows: [string, string][]) => setDo({ headers: rows.length ? Object.fromEntries(rows) : undefined });
  const save: Obj[] = a.save ?? [];
  const setSave = (s: Obj[]) => setDo({ save: s.length ? s : undefined });
  return (
    <>
      <div class="fe-row">
        <label>
          {t('fe.method')}
          <select value={a.method} onChange={(e) => setDo({ method: e.currentTarget.value })} data-testid="http-method">
            {HTTP_METHODS.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        </label>
        <div class="grow">
          <TextField label={t('fe.url')} value={a.url} onInput={(v) => setDo({ url: v })} problems={take(`${at}.url`)} testid="http-url" hint={t('fe.url_hint')} />
        </div>
      </div>
      <Group legend={t('fe.headers')}>
        {headers.map(([k, v], i) => (
          <div class="fe-row" key={i}>
            <TextField label={t('fe.header_name', { n: i + 1 })} value={k} onInput={(nk) => setHeaders(replaceAt(headers, i, [nk, v] as [string, string]))} problems={take(`${at}.headers.${k}`)} />
            <TextField label={t('fe.header_value', { n: i + 1 })} value={v} onInput={(nv) => setHeaders(replaceAt(headers, i, [k, nv] as [string, string]))} />
            <button type="button" class="link danger" onClick={() => setHeaders(removeAt(headers, i))} aria-label={t('fe.remove_header', { n: i + 1 })}>
              ✕
            </button>
          </div>
        ))}
        <Problems list={take(`${at}.headers`)} />
        {headers.length < LIMITS.headers && (
          <button
            type="button"
            class="small"
            onClick={() => {
              let n = headers.length + 1;
              while (headers.some(([k]) => k === `X-Header-${n}`)) n++;
              setHeaders([...headers, [`X-Header-${n}`, '']]);
            }}
          >
            + {t('fe.add_header')}
          </button>
        )}
      </Group>
      {(a.method !== 'GET' || a.body !== undefined) && <JsonField label={t('fe.body')} value={a.body} onChange={(v) => setDo({ body: v })} problems={take(`${at}.body`)} />}
      <NumberField label={t('fe.http_timeout')} value={a.timeout_secs} min={1} max={LIMITS.httpTimeout} onChange={(v) => setDo({ timeout_secs: v ?? 10 })} problems={take(`${at}.timeout_secs`)} testid="http-timeout" />
      <Group legend={t('fe.save_fields')}>
        {save.map((s, i) => (
          <div class="fe-row" key={i}>
            <TextField label={t('fe.json_path', { n: i + 1 })} value={s.path} placeholder="data.order.status" onInput={(v) => setSave(replaceAt(save, i, { ...s, path: v }))} problems={take(`${at}.save[${i}].path`)} />
            <TextField label={t('fe.into_field', { n: i + 1 })} value={s.field} list="fe-fields" onInput={(v) => setSave(replaceAt(save, i, { ...s, field: v }))} problems={take(`${at}.save[${i}]`)} />
            <button type="button" class="link danger" onClick={() => setSave(removeAt(save, i))} aria-label={t('fe.remove_saved', { n: i + 1 })}>
              ✕
            </button>
          </div>
        ))}
        <Problems list={take(`${at}.save`)} />
        {save.length < LIMITS.save && (
          <button type="button" class="small" onClick={() => setSave([...save, { path: '', field: '' }])}>
            + {t('fe.add_saved')}
          </button>
        )}
      </Group>
      {target('next', t('fe.on_success'))}
      {target('on_failure', t('fe.on_failure'), { testid: 'http-on-failure' })}
    </>
  );
}

// ------------------------------------------------------------------ the editor

export function VisualEditor({ flow, onChange, problems, flows, example }: { flow: FlowJson; onChange: (f: FlowJson) => void; problems: FlowProblem[]; flows: FlowRef[]; example: FlowJson }) {
  const shared = useShared();
  const [newTriggerKind, setNewTriggerKind] = useState('keyword');
  const [newStepKind, setNewStepKind] = useState('send_message');
  const set = (patch: Obj) => onChange(merge(flow, patch));
  const claims = new Claims(problems.filter((p) => !p.path.startsWith('steps[') && !p.path.startsWith('triggers[')));
  const take = (p: string) => claims.take(p);
  const steps: StepRef[] = flow.steps.map((s) => ({ id: s.id, kind: s.do?.type }));
  const ids = new Set(steps.map((s) => s.id));
  const guards = flow.guards ?? {};
  const setGuards = (patch: Obj) => {
    const g = merge(guards, patch);
    set({ guards: Object.keys(g).length ? g : undefined });
  };
  const inboxes = flow.inboxes ?? [];
  const fieldNames = new Set(['name', 'phone', 'email']);
  for (const s of flow.steps) {
    if (typeof s.do?.save_to === 'string' && FIELD_NAME.test(s.do.save_to)) fieldNames.add(s.do.save_to);
    if (s.do?.type === 'set_field' && FIELD_NAME.test(s.do.field ?? '')) fieldNames.add(s.do.field);
  }

  const setStep = (i: number, a: Obj) => set({ steps: replaceAt(flow.steps, i, { ...flow.steps[i], do: a }) });
  const rename = (from: string, to: string): string => {
    if (!STEP_ID.test(to)) return t('fe.p.step_id');
    if (ids.has(to)) return t('fe.p.step_id_taken');
    onChange(renameStep(flow, from, to));
    return '';
  };
  const move = (i: number, d: -1 | 1) => {
    const j = i + d;
    if (j < 0 || j >= flow.steps.length) return;
    const list = [...flow.steps];
    [list[i], list[j]] = [list[j], list[i]];
    set({ steps: list });
  };
  const addStep = () => {
    const id = freshId(flow, newStepKind);
    const list = [...flow.steps];
    // A new step continues from the last one when that one goes nowhere yet.
    const last = list[list.length - 1];
    if (last && hasNext(last.do?.type) && !last.do.next) list[list.length - 1] = { ...last, do: { ...last.do, next: id } };
    list.push({ id, do: newAction(newStepKind) });
    onChange({ ...flow, steps: list, start: flow.steps.length === 0 || !flow.start ? id : flow.start });
    setTimeout(() => document.querySelector<HTMLElement>(`[data-step-id="${id}"] input, [data-step-id="${id}"] textarea`)?.focus(), 0);
  };
  const incoming = (id: string) => flow.steps.filter((s) => targets(s.do).some((x) => x.id === id)).map((s) => s.id);

  const settings = (
    <section class="card fe-settings" aria-labelledby="fe-settings-title">
      <h3 id="fe-settings-title">{t('fe.settings')}</h3>
      <TextField label={t('flows.name')} value={flow.name} maxLength={100} onInput={(v) => set({ name: v })} problems={take('name')} testid="flow-name" />
      <Group legend={t('fe.inboxes')} testid="flow-inboxes">
        <p class="hint">{inboxes.length ? t('fe.inboxes_some') : t('fe.inboxes_all')}</p>
        <div class="row wrap">
          {shared.inboxes.map((ib) => (
            <label class="check" key={ib.id}>
              <input type="checkbox" checked={inboxes.includes(ib.id)} onChange={(e) => set({ inboxes: e.currentTarget.checked ? [...inboxes, ib.id] : inboxes.filter((x) => x !== ib.id).length ? inboxes.filter((x) => x !== ib.id) : undefined })} />
              {ib.name} <span class="muted">({ib.channel})</span>
            </label>
          ))}
        </div>
        <Problems list={take('inboxes')} />
      </Group>
      <Group legend={t('fe.guards')} testid="flow-guards">
        <div class="fe-row">
          <NumberField label={t('fe.max_steps')} value={guards.max_steps} min={1} max={LIMITS.maxSteps} onChange={(v) => setGuards({ max_steps: v })} problems={take('guards.max_steps')} testid="guard-max-steps" hint={t('fe.max_steps_hint')} />
          <DurationField label={t('fe.retrigger')} value={guards.retrigger_after_secs} optional onChange={(v) => setGuards({ retrigger_after_secs: v })} problems={take('guards.retrigger_after_secs')} testid="guard-retrigger" hint={t('fe.retrigger_hint')} />
        </div>
        <label class="check">
          <input type="checkbox" checked={!!guards.once_per_contact} onChange={(e) => setGuards({ once_per_contact: e.currentTarget.checked || undefined })} data-testid="guard-once" />
          {t('fe.once_per_contact')}
        </label>
        <Problems list={take('guards')} />
      </Group>
    </section>
  );

  const triggers = (
    <section class="card" aria-labelledby="fe-triggers-title">
      <h3 id="fe-triggers-title">{t('fe.triggers')}</h3>
      <p class="hint">{t('fe.triggers_hint')}</p>
      <ol class="fe-list">
        {flow.triggers.map((tr, i) => (
          <TriggerCard key={i} tr={tr} i={i} problems={problems.filter((p) => p.path.startsWith(`triggers[${i}]`))} set={(x) => set({ triggers: replaceAt(flow.triggers, i, x) })} remove={() => set({ triggers: removeAt(flow.triggers, i) })} />
        ))}
      </ol>
      <Problems list={take('triggers')} />
      {flow.triggers.length < LIMITS.triggers && (
        <div class="row wrap fe-add">
          <label>
            {t('fe.new_trigger')}
            <select value={newTriggerKind} onChange={(e) => setNewTriggerKind(e.currentTarget.value)} data-testid="trigger-new-kind">
              {TRIGGER_KINDS.map((k) => (
                <option key={k} value={k}>
                  {t(`fe.trig.${k}` as Key)}
                </option>
              ))}
            </select>
          </label>
          <button type="button" onClick={() => set({ triggers: [...flow.triggers, newTrigger(newTriggerKind)] })} data-testid="trigger-add">
            + {t('fe.add_trigger')}
          </button>
        </div>
      )}
    </section>
  );

  // With no steps yet, "no step has the id" for the start says nothing more than "add a step".
  const startProblems = take('start');
  const stepsCount = take('steps');
  const general = claims.rest();
  return (
    <div class="fe" data-testid="flow-visual">
      <datalist id="fe-fields">
        {[...fieldNames].map((f) => (
          <option key={f} value={f} />
        ))}
      </datalist>
      <datalist id="fe-tags">
        {shared.tags.map((tg) => (
          <option key={tg.id} value={tg.name} />
        ))}
      </datalist>
      {general.length > 0 && (
        <div class="card bad" data-testid="flow-general-problems">
          <Problems list={general} strip="" />
        </div>
      )}
      {settings}
      {triggers}
      <section class="card" aria-labelledby="fe-steps-title">
        <h3 id="fe-steps-title">{t('fe.steps')}</h3>
        <p class="hint">{t('fe.steps_hint')}</p>
        {flow.steps.length > 0 && (
          <TargetSelect label={t('fe.start_step')} value={flow.start} onChange={(v) => set({ start: v ?? '' })} steps={steps} problems={startProblems} testid="flow-start" />
        )}
        {flow.steps.length === 0 && (
          <p class="muted">
            {t('fe.no_steps')}{' '}
            <button type="button" class="link" onClick={() => onChange({ ...example, name: flow.name || example.name })} data-testid="flow-example">
              {t('fe.use_example')}
            </button>
          </p>
        )}
        <ol class="fe-list">
          {flow.steps.map((s, i) => (
            <StepCard
              key={`${i}:${s.id}`}
              step={s}
              index={i}
              count={flow.steps.length}
              isStart={s.id === flow.start}
              steps={steps}
              from={incoming(s.id)}
              problems={problems.filter((p) => p.path === `steps[${s.id}]` || p.path.startsWith(`steps[${s.id}].`))}
              flows={flows}
              set={(a) => setStep(i, a)}
              rename={(to) => rename(s.id, to)}
              move={(d) => move(i, d)}
              remove={() => set({ steps: removeAt(flow.steps, i) })}
              makeStart={() => set({ start: s.id })}
            />
          ))}
        </ol>
        <Problems list={stepsCount} />
        {flow.steps.length < LIMITS.steps && (
          <div class="row wrap fe-add">
            <label>
              {t('fe.new_step')}
              <select value={newStepKind} onChange={(e) => setNewStepKind(e.currentTarget.value)} data-testid="step-new-kind">
                {STEP_KINDS.map((k) => (
                  <option key={k} value={k}>
                    {t(`fe.kind.${k}` as Key)}
                  </option>
                ))}
              </select>
            </label>
            <button type="button" class="primary" onClick={addStep} data-testid="step-add">
              + {t('fe.add_step')}
            </button>
          </div>
        )}
      </section>
    </div>
  );
}

