// Reading a form's JSON Schema as a questionnaire: what kind of question each property is, its words
// in the worker's language, and which questions the answers so far hide or require (`if/then/else`).
// Pure: no DOM, no network, so `node --test` checks it.

import { validate } from '../../vendor/cfworker-json-schema/index.js';
import { normalize } from './resident-id.js';

/** Follows local `$ref`s (`#/$defs/...`): forms are self-contained. */
export function deref(root, schema) {
  let current = schema;
  for (let hops = 0; current && typeof current === 'object' && typeof current.$ref === 'string' && hops < 32; hops++) {
    const ref = current.$ref;
    if (!ref.startsWith('#')) break;
    const target = ref.slice(1).split('/').slice(1)
      .map((s) => decodeURIComponent(s).replace(/~1/g, '/').replace(/~0/g, '~'))
      .reduce((node, key) => node?.[key], root);
    // The referring schema's own keywords (a local `title`, say) win over the target's.
    const { $ref: _, ...own } = current;
    current = target ? { ...target, ...own } : current;
  }
  return current ?? {};
}

const typeOf = (schema) => (Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type);

/** The kind of control a property's schema asks for. */
/** How each file type is asked for (`contentMediaType`): phone cameras make JPEG, so a PNG question is a drawing, a signature. */
const ATTACHMENTS = {
  'image/jpeg': 'photo', 'image/webp': 'photo', 'image/png': 'signature', 'audio/webm': 'audio',
  'audio/ogg': 'audio', 'audio/mp4': 'audio', 'audio/mpeg': 'audio', 'application/pdf': 'document',
};

/** The file type an attachment question asks for (`image/jpeg`...), else undefined. */
export function mediaType(schema) {
  const type = typeof schema?.contentMediaType === 'string' ? schema.contentMediaType.split(';')[0].trim().toLowerCase() : '';
  return ATTACHMENTS[type] ? type : undefined;
}

export function kindOf(root, raw) {
  const schema = deref(root, raw);
  // Computed by the phone (`calculate.js`), never asked.
  if (typeof schema['x-calculation'] === 'string') return 'calculation';
  if (schema.const === true) return 'consent';
  if (mediaType(schema)) return ATTACHMENTS[mediaType(schema)];
  if (Array.isArray(schema.enum)) return 'choice';
  const type = typeOf(schema);
  if (type === 'boolean') return 'boolean';
  if (type === 'array') {
    const items = deref(root, schema.items ?? {});
    if (Array.isArray(items.enum)) return 'choices';
    if (typeOf(items) === 'object' || items.properties) return 'group';
    return 'unsupported';
  }
  if (type === 'object' || schema.properties) return 'object';
  if (type === 'integer') return 'integer';
  if (type === 'number') return 'number';
  if (schema.format === 'date') return 'date';
  if (schema.format === 'cn-resident-id') return 'resident-id';
  if (schema.format === 'cn-mobile') return 'mobile';
  return 'text';
}

/** The question's title: `title` in Chinese, `x-title-en` in English, else the property name. */
export function titleOf(schema, name, lang) {
  const text = lang === 'en' ? schema['x-title-en'] : schema.title;
  return text || schema.title || name;
}

/** The question's hint for the worker (an XLSForm's `hint`): `x-hint`, `x-hint-en` in English. */
export function hintOf(schema, lang) {
  return (lang === 'en' && schema['x-hint-en']) || schema['x-hint'] || undefined;
}

/** `[{value, label}]` of a single or multiple choice, labelled by `x-labels` (`x-labels-en`). */
export function choicesOf(root, raw, lang) {
  const schema = deref(root, raw);
  const source = Array.isArray(schema.enum) ? schema : deref(root, schema.items ?? {});
  const labels = (lang === 'en' && source['x-labels-en']) || source['x-labels'] || {};
  const english = lang === 'en' ? source['x-labels-en'] ?? {} : {};
  return (source.enum ?? []).map((value) => ({ value, label: english[value] ?? labels[value] ?? String(value) }));
}

/** An item of a repeated group: `第1位劳动力` from `x-item-label`, else `title n`. */
export function itemLabel(schema, title, n, lang) {
  const template = schema['x-item-label']?.[lang === 'en' ? 'en' : 'zh-CN'];
  return template ? template.replace('{n}', String(n)) : `${title} ${n}`;
}

/** What the button adding an item is called after: `劳动力` (`Labourer` from `Labourer {n}` in English). */
export function itemName(schema, title, lang) {
  const template = lang === 'en' ? schema['x-item-label']?.en : undefined;
  return template ? template.replace('{n}', '').trim() : title;
}

/**
 * A number question's answer as typed (text, so `3000.` stays on screen while the worker types),
 * read as a number once it is one: full-width digits and spaces are tolerated, as the server's
 * cleaning does. Anything else stays text, for validation to name (`类型不对，应为数字`).
 */
export function numberFrom(typed) {
  if (typeof typed !== 'string') return typed;
  const text = normalize(typed);
  if (text === '') return undefined;
  return /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : typed;
}

/** The answers of one object with its number questions read as numbers (for conditions). */
function typed(root, schema, value) {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
  const out = { ...value };
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    const kind = kindOf(root, child);
    if ((kind === 'integer' || kind === 'number') && name in out) out[name] = numberFrom(out[name]);
  }
  return out;
}

const answered = (value, name) => value && typeof value === 'object' && value[name] !== undefined;

/**
 * What a branch forbids, as paths of property names below the object (`*` for any item of an
 * array): `['settlement']`, or `['land', 'area']` and `['people', '*', 'job']` for a question of a
 * group or repeat that hangs on an answer outside it (as XLSForms write them).
 */
function forbidden(branch, prefix = []) {
  if (!branch || typeof branch !== 'object') return [];
  const paths = [];
  for (const [name, s] of Object.entries(branch.properties ?? {})) {
    if (s === false) paths.push([...prefix, name]);
    else paths.push(...forbidden(s, [...prefix, name]));
  }
  if (branch.items) paths.push(...forbidden(branch.items, [...prefix, '*']));
  for (const part of branch.allOf ?? []) paths.push(...forbidden(part, prefix));
  return paths;
}

/** The hidden paths below `name`, from those of its object. */
export const inheritedFor = (below, name) => below.filter((p) => p[0] === name).map((p) => p.slice(1));

/** The hidden paths of every item, from those of its array. */
export const itemsOf = (inherited = []) => inherited.filter((p) => p[0] === '*').map((p) => p.slice(1));

/**
 * The conditions of an object schema applied to its answers: `{hidden, required}` (sets of property
 * names) and `below`, the hidden paths deeper down (for `inheritedFor`); `inherited` are the paths
 * the objects above hide in this one. A branch is chosen only once every question its `if` looks at
 * is answered; until then the questions either branch would forbid stay hidden (nobody is asked
 * about income before saying they work).
 */
export function conditions(root, raw, given, inherited = []) {
  const schema = deref(root, raw);
  // A question with a `default` (a labourer is present unless said otherwise) counts as answered
  // with it, as the server reads its absence.
  const defaults = Object.fromEntries(Object.entries(schema.properties ?? {})
    .map(([name, child]) => [name, deref(root, child)?.default])
    .filter(([, value]) => value !== undefined));
  const value = given && typeof given === 'object' && !Array.isArray(given) ? { ...defaults, ...given } : given;
  const hidden = new Set();
  const below = [];
  const hide = (path) => (path.length === 1 ? hidden.add(path[0]) : below.push(path));
  inherited.forEach(hide);
  const required = new Set(schema.required ?? []);
  const rules = [schema, ...(schema.allOf ?? []).map((s) => deref(root, s))].filter((s) => s.if !== undefined);
  for (const rule of rules) {
    const condition = deref(root, rule.if);
    const looksAt = new Set([...(condition.required ?? []), ...Object.keys(condition.properties ?? {})]);
    if ([...looksAt].some((name) => !answered(value, name))) {
      [...forbidden(rule.then), ...forbidden(rule.else)].forEach(hide);
      continue;
    }
    const holds = validate(typed(root, schema, value) ?? {}, condition, '2020-12', undefined, true).valid;
    const branch = holds ? rule.then : rule.else;
    if (!branch || branch === true) continue;
    forbidden(branch).forEach(hide);
    for (const name of branch.required ?? []) required.add(name);
  }
  for (const name of hidden) required.delete(name);
  return { hidden, required, below };
}

/**
 * The answers as they are sent: hidden questions' answers left out (kept in the draft, in case the
 * worker changes their mind), empty texts and untouched lists dropped, at every depth.
 */
export function prune(root, raw, value, inherited = []) {
  const schema = deref(root, raw);
  const kind = kindOf(root, schema);
  if (value === undefined || value === null || value === '') return undefined;
  if (kind === 'object' || (kind !== 'group' && schema.properties)) {
    if (typeof value !== 'object' || Array.isArray(value)) return value;
    const { hidden, below } = conditions(root, schema, value, inherited);
    const out = {};
    for (const [name, answer] of Object.entries(value)) {
      if (hidden.has(name)) continue;
      const child = schema.properties?.[name];
      const kept = child === undefined ? answer : prune(root, child, answer, inheritedFor(below, name));
      if (kept !== undefined) out[name] = kept;
    }
    return out;
  }
  if (kind === 'group') {
    if (!Array.isArray(value)) return value;
    return value.map((item) => prune(root, schema.items, item, itemsOf(inherited)) ?? {});
  }
  if (kind === 'choices') return Array.isArray(value) && value.length === 0 ? undefined : value;
  if (kind === 'integer' || kind === 'number') return numberFrom(value);
  return value;
}

/** The `x-rules` that fill fields from an ID number, by the object they apply in. */
export function idRules(root, raw) {
  const schema = deref(root, raw);
  return (schema['x-rules'] ?? []).filter((r) => r.rule === 'resident-id-birth-date' || r.rule === 'resident-id-gender');
}

/** A new questionnaire's answers: each repeated group starts with as many empty items as it needs. */
export function initial(root, raw) {
  const schema = deref(root, raw);
  const answers = {};
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    const sub = deref(root, child);
    if (kindOf(root, sub) === 'group' && (sub.minItems ?? 0) > 0) {
      answers[name] = Array.from({ length: sub.minItems }, () => initial(root, sub.items));
    }
  }
  return answers;
}

/** Whether the question at `pointer` is hidden by the answers (a condition not yet decided, or forbidding it). */
export function isHidden(root, answers, pointer) {
  const names = pointer.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  let schema = deref(root, root);
  let value = answers;
  let inherited = [];
  for (const name of names) {
    if (/^\d+$/.test(name) && schema.items) {
      schema = deref(root, schema.items);
      inherited = itemsOf(inherited);
    } else {
      const { hidden, below } = conditions(root, schema, value, inherited);
      if (hidden.has(name)) return true;
      inherited = inheritedFor(below, name);
      schema = deref(root, schema.properties?.[name] ?? {});
    }
    value = value?.[name];
  }
  return false;
}

/** The form's place field (`x-scope`, e.g. `township`) and its places (`enum`), if it declares one. */
export function placeField(root) {
  const name = typeof root?.['x-scope'] === 'string' ? root['x-scope'].replace(/^\//, '') : '';
  const schema = name ? deref(root, root.properties?.[name] ?? {}) : {};
  return { name, places: Array.isArray(schema.enum) ? schema.enum : [] };
}

/** The answers that name files (`{path, name}`, path a JSON Pointer into `data`), at any depth. */
export function fileAnswers(root, raw, data, path = '') {
  const schema = deref(root, raw);
  if (mediaType(schema)) return typeof data === 'string' ? [{ path, name: data }] : [];
  if (Array.isArray(data)) return data.flatMap((item, i) => fileAnswers(root, schema.items ?? {}, item, `${path}/${i}`));
  if (!data || typeof data !== 'object') return [];
  return Object.entries(schema.properties ?? {}).flatMap(([name, child]) =>
    (child === false ? [] : fileAnswers(root, child, data[name], `${path}/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`)));
}
