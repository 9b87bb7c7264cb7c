// The flow format as the visual editor handles it: the JSON stays the one source of truth (the
// editor changes that object and nothing else), so these are loose shapes over it, the defaults a
// new trigger, step or condition starts with, the step ids each step leads to, renaming a step
// everywhere it is named, the instant checks the editor makes before the server's
// (`POST /flows/check`), and sorting problems by the field they concern.
// The shapes and limits follow crates/core/src/flow/model.rs and check.rs.

import { Key, lang, t } from './i18n';

export type Obj = Record<string, any>;

export interface FlowJson {
  name: string;
  version?: number;
  inboxes?: string[];
  triggers: Obj[];
  start: string;
  steps: { id: string; do: Obj }[];
  guards?: { max_steps?: number; retrigger_after_secs?: number; once_per_contact?: boolean };
  [k: string]: unknown;
}

export interface FlowProblem {
  path: string;
  message: string;
  /** Found by the editor itself (already in the reader's language), not by the server. */
  local?: boolean;
}

export const TRIGGER_KINDS = [
  'new_conversation',
  'keyword',
  'has_phone',
  'has_email',
  'payload',
  'referral',
  'outside_business_hours',
  'resolved',
  'tag_added',
  'field_changed',
  'agent_start',
  'started_by_flow',
  'scheduled_due',
] as const;

export const STEP_KINDS = [
  'send_message',
  'ask',
  'add_tag',
  'remove_tag',
  'set_field',
  'branch',
  'wait',
  'split',
  'http',
  'handoff',
  'resolve',
  'faq_bot',
  'start_flow',
  'schedule_flow',
  'cancel_scheduled_flow',
  'stop',
] as const;

export const KEYWORD_MODES = ['exact', 'contains', 'whole_word', 'starts_with', 'regex'] as const;
export const ANSWER_KINDS = ['text', 'number', 'phone', 'email', 'choice'] as const;
export const CONDITION_KINDS = ['field', 'has_tag', 'channel', 'within_business_hours', 'window_open', 'all', 'any', 'not'] as const;
export const COMPARE_OPS = ['eq', 'ne', 'contains', 'gt', 'gte', 'lt', 'lte', 'is_set', 'is_empty'] as const;
export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
export const MEDIA_KINDS = ['image', 'video', 'audio', 'document', 'sticker'] as const;
export const CHANNELS = ['messenger', 'instagram', 'whatsapp', 'zalo', 'telegram', 'shopee', 'livechat'] as const;

/** Steps whose `next` is their one way on (a new step may continue from them). */
const SIMPLE_NEXT = new Set(['send_message', 'ask', 'add_tag', 'remove_tag', 'set_field', 'wait', 'http', 'schedule_flow', 'cancel_scheduled_flow']);

export function hasNext(kind: string): boolean {
  return SIMPLE_NEXT.has(kind);
}

export const LIMITS = { variants: 10, buttons: 10, choices: 10, paths: 10, triggers: 20, steps: 100, headers: 20, save: 20, depth: 4, retries: 10, maxSteps: 500, httpTimeout: 30 };

export function emptyFlow(): FlowJson {
  return { name: '', version: 1, triggers: [], start: '', steps: [] };
}

export function newTrigger(type: string): Obj {
  switch (type) {
    case 'keyword':
      return { type, match: 'whole_word', keywords: [] };
    case 'payload':
      return { type, payloads: [] };
    default:
      return { type };
  }
}

export function newCondition(type: string): Obj {
  switch (type) {
    case 'field':
      return { type, field: '', op: 'eq', value: '' };
    case 'has_tag':
      return { type, tag: '' };
    case 'channel':
      return { type, channels: [] };
    case 'all':
    case 'any':
      return { type, of: [newCondition('field')] };
    case 'not':
      return { type, of: newCondition('has_tag') };
    default:
      return { type };
  }
}

export function newAction(type: string): Obj {
  switch (type) {
    case 'send_message':
      return { type, variants: [{ text: '' }] };
    case 'ask':
      return { type, question: { text: '' }, answer: { type: 'text' }, save_to: '', retries: 2 };
    case 'add_tag':
    case 'remove_tag':
      return { type, tag: '' };
    case 'set_field':
      return { type, field: '', value: '' };
    case 'branch':
      return { type, paths: [{ when: newCondition('field'), next: '' }] };
    case 'wait':
      return { type, seconds: 3600 };
    case 'split':
      return { type, paths: [{ weight: 50, next: '' }, { weight: 50, next: '' }] };
    case 'http':
      return { type, method: 'POST', url: 'https://', timeout_secs: 10 };
    case 'faq_bot':
      return { type, fallback: '', max_misses: 3 };
    case 'start_flow':
    case 'cancel_scheduled_flow':
      return { type, flow: '' };
    case 'schedule_flow':
      return { type, flow: '', delay_secs: 86400 };
    default:
      return { type };
  }
}

/** A fresh step id for a step of this kind: `ask_2` when `ask_1` is taken. */
export function freshId(flow: FlowJson, kind: string): string {
  const taken = new Set(flow.steps.map((s) => s.id));
  const base = kind.replace(/_flow$/, '').replace(/^send_message$/, 'send');
  for (let n = 1; ; n++) if (!taken.has(`${base}_${n}`)) return `${base}_${n}`;
}

export const STEP_ID = /^[A-Za-z0-9_-]{1,40}$/;
export const FIELD_NAME = /^[a-z][a-z0-9_]{0,49}$/;

/** Every step id an action names, with the field (relative to the step) that names it. */
export function targets(a: Obj): { rel: string; id: string }[] {
  const out: { rel: string; id: string }[] = [];
  const opt = (rel: string, v: unknown) => typeof v === 'string' && out.push({ rel, id: v });
  if (!a || typeof a !== 'object') return out;
  opt('next', a.next);
  opt('timeout_next', a.timeout_next);
  opt('otherwise', a.otherwise);
  opt('on_failure', a.on_failure);
  if (a.type === 'ask' && a.answer?.type === 'choice' && Array.isArray(a.answer.choices)) {
    a.answer.choices.forEach((c: Obj, i: number) => opt(`answer.choices[${i}].next`, c?.next));
  }
  if ((a.type === 'branch' || a.type === 'split') && Array.isArray(a.paths)) {
    a.paths.forEach((p: Obj, i: number) => opt(`paths[${i}].next`, p?.next));
  }
  return out;
}

/** The flow with step `from` called `to`, and every reference to it (start, next, paths…) too. */
export function renameStep(flow: FlowJson, from: string, to: string): FlowJson {
  const ren = (v: unknown) => (v === from ? to : v);
  const steps = flow.steps.map((s) => {
    const a: Obj = { ...s.do };
    for (const k of ['next', 'timeout_next', 'otherwise', 'on_failure']) if (k in a) a[k] = ren(a[k]);
    if (a.answer?.type === 'choice' && Array.isArray(a.answer.choices)) {
      a.answer = { ...a.answer, choices: a.answer.choices.map((c: Obj) => ('next' in c ? { ...c, next: ren(c.next) } : c)) };
    }
    if (Array.isArray(a.paths)) a.paths = a.paths.map((p: Obj) => ({ ...p, next: ren(p.next) }));
    return { ...s, id: s.id === from ? to : s.id, do: a };
  });
  return { ...flow, start: ren(flow.start) as string, steps };
}

/** Why this JSON cannot be shown in the visual editor, or '' when it can. */
export function shapeError(v: unknown): string {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return t('fe.shape_object');
  const f = v as Obj;
  if (f.steps !== undefined && !Array.isArray(f.steps)) return t('fe.shape_steps');
  if (f.triggers !== undefined && !Array.isArray(f.triggers)) return t('fe.shape_triggers');
  for (const s of f.steps ?? []) {
    if (!s || typeof s !== 'object' || typeof s.id !== 'string' || !s.do || typeof s.do !== 'object' || typeof s.do.type !== 'string') return t('fe.shape_step');
  }
  for (const tr of f.triggers ?? []) if (!tr || typeof tr !== 'object' || typeof tr.type !== 'string') return t('fe.shape_trigger');
  return '';
}

/** The flow with the arrays the editor relies on present. */
export function normalize(v: Obj): FlowJson {
  return { ...v, name: typeof v.name === 'string' ? v.name : '', triggers: v.triggers ?? [], steps: v.steps ?? [], start: typeof v.start === 'string' ? v.start : '' } as FlowJson;
}

const blank = (s: unknown) => typeof s !== 'string' || s.trim() === '';

/**
 * What the editor can tell at once, in the reader's language: blank texts, missing targets, a
 * step id already used, a flow not chosen. The server's check (`/flows/check`) says the rest.
 */
export function localProblems(flow: FlowJson): FlowProblem[] {
  const out: FlowProblem[] = [];
  const add = (path: string, key: Key, vars?: Record<string, string | number>) => out.push({ path, message: t(key, vars), local: true });
  if (blank(flow.name)) add('name', 'fe.p.name');
  if (flow.triggers.length === 0) add('triggers', 'fe.p.no_triggers');
  if (flow.steps.length === 0) add('steps', 'fe.p.no_steps');
  // Numbers out of range: beyond some of them the server cannot even read the flow (a u8).
  const range = (path: string, v: unknown, min: number, max: number) => {
    if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max)) add(path, 'fe.p.range', { min, max });
  };
  range('guards.max_steps', flow.guards?.max_steps, 1, LIMITS.maxSteps);
  const ids = new Set(flow.steps.map((s) => s.id));
  if (flow.steps.length > 0 && !ids.has(flow.start)) add('start', flow.start ? 'fe.p.start_missing' : 'fe.p.start_none', { id: flow.start });
  flow.triggers.forEach((tr, i) => {
    const at = `triggers[${i}]`;
    if (tr.type === 'keyword' && !(tr.keywords?.length > 0)) add(`${at}.keywords`, 'fe.p.keywords');
    if (tr.type === 'payload' && !(tr.payloads?.length > 0)) add(`${at}.payloads`, 'fe.p.payloads');
  });
  const seen = new Set<string>();
  for (const s of flow.steps) {
    const at = `steps[${s.id}]`;
    const a = s.do;
    if (!STEP_ID.test(s.id)) add(`${at}.id`, 'fe.p.step_id');
    else if (seen.has(s.id)) add(`${at}.id`, 'fe.p.step_id_taken');
    seen.add(s.id);
    for (const { rel, id } of targets(a)) {
      if (id === '') add(`${at}.${rel}`, 'fe.p.choose_step');
      else if (!ids.has(id)) add(`${at}.${rel}`, 'fe.p.target_missing', { id });
    }
    const message = (m: Obj | undefined, p: string, needText: boolean) => {
      if (!m) return;
      if (blank(m.text) && (needText || !m.media)) add(`${p}.text`, 'fe.p.text');
      if (m.media && blank(m.media.url)) add(`${p}.media.url`, 'fe.p.media_url');
      (m.buttons ?? []).forEach((b: Obj, j: number) => {
        if (blank(b.title)) add(`${p}.buttons[${j}].title`, 'fe.p.button_title');
        else if (blank(b.payload)) add(`${p}.buttons[${j}].payload`, 'fe.p.button_payload');
      });
    };
    const field = (rel: string, v: unknown) => {
      if (blank(v)) add(`${at}.${rel}`, 'fe.p.field_empty');
      else if (!FIELD_NAME.test(v as string)) add(`${at}.${rel}`, 'fe.p.field_name');
    };
    switch (a.type) {
      case 'send_message':
        (a.variants ?? []).forEach((m: Obj, i: number) => message(m, `${at}.variants[${i}]`, false));
        break;
      case 'ask':
        message(a.question, `${at}.question`, true);
        field('save_to', a.save_to);
        range(`${at}.retries`, a.retries, 0, LIMITS.retries);
        if (a.answer?.type === 'choice') {
          const cs: Obj[] = a.answer.choices ?? [];
          if (cs.length < 2) add(`${at}.answer.choices`, 'fe.p.choices');
          cs.forEach((c, i) => {
            if (blank(c.title)) add(`${at}.answer.choices[${i}].title`, 'fe.p.choice_title');
            if (blank(c.value)) add(`${at}.answer.choices[${i}].value`, 'fe.p.choice_value');
          });
        }
        break;
      case 'add_tag':
      case 'remove_tag':
        if (blank(a.tag)) add(`${at}.tag`, 'fe.p.tag');
        break;
      case 'set_field':
        field('field', a.field);
        break;
      case 'branch':
        if (!(a.paths?.length > 0)) add(`${at}.paths`, 'fe.p.paths');
        (a.paths ?? []).forEach((p: Obj, i: number) => condition(p.when, `${at}.paths[${i}].when`, add, field));
        break;
      case 'split':
        (a.paths ?? []).forEach((p: Obj, i: number) => range(`${at}.paths[${i}].weight`, p.weight, 1, 1000));
        break;
      case 'wait':
        if (!a.until_business_hours && !(a.seconds > 0)) add(`${at}.seconds`, 'fe.p.duration');
        break;
      case 'http':
        if (!/^https?:\/\/\S+/.test(a.url ?? '')) add(`${at}.url`, 'fe.p.url');
        range(`${at}.timeout_secs`, a.timeout_secs, 1, LIMITS.httpTimeout);
        (a.save ?? []).forEach((s: Obj, i: number) => {
          if (blank(s.path)) add(`${at}.save[${i}].path`, 'fe.p.json_path');
          field(`save[${i}].field`, s.field);
        });
        break;
      case 'faq_bot':
        if (blank(a.fallback)) add(`${at}.fallback`, 'fe.p.text');
        range(`${at}.max_misses`, a.max_misses, 1, LIMITS.retries);
        break;
      case 'start_flow':
      case 'schedule_flow':
      case 'cancel_scheduled_flow':
        if (blank(a.flow)) add(`${at}.flow`, 'fe.p.flow');
        break;
    }
  }
  return out;
}

function condition(c: Obj | undefined, at: string, add: (p: string, k: Key) => void, field: (rel: string, v: unknown) => void) {
  if (!c) return;
  switch (c.type) {
    case 'field': {
      const rel = at.replace(/^steps\[[^\]]*\]\./, '');
      field(`${rel}.field`, c.field);
      if (!['is_set', 'is_empty'].includes(c.op) && blank(c.value)) add(`${at}.value`, 'fe.p.value');
      break;
    }
    case 'has_tag':
      if (blank(c.tag)) add(`${at}.tag`, 'fe.p.tag');
      break;
    case 'channel':
      if (!(c.channels?.length > 0)) add(`${at}.channels`, 'fe.p.channels');
      break;
    case 'all':
    case 'any':
      (c.of ?? []).forEach((x: Obj, i: number) => condition(x, `${at}.of[${i}]`, add, field));
      break;
    case 'not':
      condition(c.of, `${at}.of`, add, field);
      break;
  }
}

/**
 * The server's problems beside the editor's own: where the editor already says something about a
 * field, the server's words for the same field are left out. (The server names branch and choice
 * targets without their index: `steps[x].paths.next`.)
 */
export function mergeProblems(local: FlowProblem[], server: FlowProblem[]): FlowProblem[] {
  const covered = new Set<string>();
  for (const p of local) {
    covered.add(p.path);
    covered.add(p.path.replace(/\.(paths|choices)\[\d+\]\.next$/, '.$1.next'));
  }
  return [...local, ...server.filter((p) => !covered.has(p.path)).map((p) => ({ ...p, message: serverMessage(p.message) }))];
}

/** The server's common problem messages in Vietnamese (the rest stay as the server wrote them). */
export function serverMessage(m: string): string {
  if (lang() !== 'vi') return m;
  const rules: [RegExp, (x: RegExpMatchArray) => string][] = [
    [/^must not be empty$/, () => 'không được để trống'],
    [/^has a '\{\{' without its '\}\}'$/, () => "có '{{' mà thiếu '}}'"],
    [/^\{\{(.*)\}\} is not a variable/, (x) => `{{${x[1]}}} không phải là biến (viết {{contact.<trường>}})`],
    [/^\{\{(.*)\}\}: "(.*)" is not a field name$/, (x) => `{{${x[1]}}}: "${x[2]}" không phải tên trường`],
    [/^is not a valid regular expression/, () => 'không phải biểu thức chính quy hợp lệ'],
    [/^must contain a letter or a digit$/, () => 'cần có chữ cái hoặc chữ số'],
    [/^is not a valid header name$/, () => 'tên header không hợp lệ'],
    [/^needs exactly one of seconds and until_business_hours$/, () => 'chọn chờ một khoảng thời gian hoặc chờ đến giờ làm việc'],
    [/^no step has the id "(.*)"$/, (x) => `không có bước nào mang mã "${x[1]}"`],
    [/^cannot be reached from the start step$/, () => 'không có bước nào dẫn tới bước này từ bước bắt đầu'],
    [/^a step cannot lead straight back to itself$/, () => 'một bước không được dẫn thẳng về chính nó'],
    [/^is used by another step$/, () => 'đã có bước khác dùng mã này'],
    [/^is used by another button$/, () => 'đã có nút khác dùng mã này'],
    [/^is used by another choice$/, () => 'đã có lựa chọn khác dùng giá trị này'],
    [/^must have between (\d+) and (\d+), not (\d+)$/, (x) => `cần từ ${x[1]} đến ${x[2]}, đang có ${x[3]}`],
    [/^must be at most (\d+) characters$/, (x) => `tối đa ${x[1]} ký tự`],
    [/^must be at most (\d+)$/, (x) => `tối đa ${x[1]}`],
    [/^must be between (\d+) and (\d+) seconds$/, (x) => `phải từ ${x[1]} đến ${x[2]} giây`],
    [/^must be between (\d+) and (\d+)$/, (x) => `phải từ ${x[1]} đến ${x[2]}`],
    [/^"(.*)" is not a field name/, (x) => `"${x[1]}" không phải tên trường (a-z, 0-9 và _, bắt đầu bằng chữ)`],
    [/^must start with https:\/\/ or http:\/\/$/, () => 'phải bắt đầu bằng https:// hoặc http://'],
    [/^must be an http\(s\) link$/, () => 'phải là đường link http(s)'],
    [/^the host must not contain variables$/, () => 'tên miền không được chứa biến'],
    [/^a GET request has no body$/, () => 'yêu cầu GET không có nội dung'],
    [/^cannot go with a media file$/, () => 'không đi kèm tệp được'],
    [/^must not contain control characters$/, () => 'không được chứa ký tự điều khiển'],
    [/^needs a text or a media file$/, () => 'cần nội dung hoặc tệp'],
    [/^a choice question makes its buttons from its choices$/, () => 'câu hỏi lựa chọn tự tạo nút từ các lựa chọn'],
    [/^must start before it ends$/, () => 'giờ bắt đầu phải trước giờ kết thúc'],
    [/^must be two times HH:MM$/, () => 'cần hai mốc giờ HH:MM'],
  ];
  for (const [re, f] of rules) {
    const x = m.match(re);
    if (x) return f(x);
  }
  return m;
}

/**
 * Hands out the problems under one path to the fields that show them, each once: a field takes
 * the problems at its path and below; what no field took is shown for the whole (`rest`).
 */
export class Claims {
  private taken = new Set<FlowProblem>();
  constructor(private list: FlowProblem[]) {}

  take(path: string): FlowProblem[] {
    const out = this.list.filter((p) => !this.taken.has(p) && (p.path === path || p.path.startsWith(path + '.') || p.path.startsWith(path + '[')));
    out.forEach((p) => this.taken.add(p));
    return out;
  }

  rest(): FlowProblem[] {
    return this.list.filter((p) => !this.taken.has(p));
  }
}

/** Seconds as a number and a unit, the largest unit that divides them. */
export const UNITS = [
  ['days', 86400],
  ['hours', 3600],
  ['minutes', 60],
  ['seconds', 1],
] as const;

export function splitDuration(secs: number): [number, number] {
  for (const [, u] of UNITS) if (secs % u === 0) return [secs / u, u];
  return [secs, 1];
}

/** A button's payload made from its title: `Gặp nhân viên` → `GAP_NHAN_VIEN`. */
export function payloadFor(title: string): string {
  return title
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[đĐ]/g, 'D')
    .toUpperCase()
    .replace(/[^A-Z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 100);
}
