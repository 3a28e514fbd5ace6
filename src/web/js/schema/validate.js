// The server's validation, on the phone: JSON Schema 2020-12 by an interpreting validator (no `eval`,
// so it runs under the app's CSP), the county's formats, and the `x-rules`, reported as the server
// reports them: `{path, key, params}`, a JSON Pointer into the data and a message key of the catalogue.
// The shared vectors in `tests/vectors/` hold both to the same answers.

import { Validator, format } from '../../vendor/cfworker-json-schema/index.js';
import { residentId, isResidentId, isMobile } from './resident-id.js';
import { join } from './pointer.js';

format['cn-resident-id'] = isResidentId;
format['cn-mobile'] = isMobile;

/** Keywords that only say "something below failed": the failure below is the one to report. */
const WRAPPERS = new Set([
  'properties', 'items', 'prefixItems', 'allOf', 'if', '$ref', '$recursiveRef', 'dependentSchemas',
  'patternProperties', 'additionalItems', 'unevaluatedItems', 'unevaluatedProperties', 'contains',
]);

const validators = new WeakMap();

function validatorFor(schema) {
  let validator = validators.get(schema);
  if (!validator) {
    validator = new Validator(schema, '2020-12', false);
    validators.set(schema, validator);
  }
  return validator;
}

// cfworker writes locations as `#` + encodeURI(pointer) with `#` as %23: decoding every escape undoes it exactly.
const location = (text) => decodeURIComponent(text.replace(/^#/, ''));

/** The limit a length, size or bound error names: the last number of its message. */
function limitIn(message) {
  const numbers = message.match(/-?\d+(?:\.\d+)?(?:e[+-]?\d+)?/gi) ?? [];
  return Number(numbers[numbers.length - 1]);
}

function fromSchema(schema, data) {
  const { errors } = validatorFor(schema).validate(data);
  const out = [];
  const unknown = new Map();
  const skipped = new Set();
  for (const error of errors) {
    const at = location(error.instanceLocation);
    const value = lookup(data, at);
    switch (error.keyword) {
      case 'additionalProperties': {
        const name = /^Property "(.*)" does not match/.exec(error.error)?.[1] ?? '';
        if (!unknown.has(at)) {
          unknown.set(at, []);
          out.push({ path: at, key: 'unknown_fields', params: { fields: unknown.get(at) } });
        }
        unknown.get(at).push(name);
        skipped.add(join(at, name));
        break;
      }
      case 'false':
        if (!skipped.has(at)) out.push({ path: at, key: 'not_asked' });
        break;
      case 'required': {
        const name = /required property "(.*)"\.$/.exec(error.error)?.[1] ?? '';
        out.push({ path: join(at, name), key: 'required' });
        break;
      }
      case 'type': {
        const expected = /Expected "(.*)"\.$/.exec(error.error)?.[1] ?? '';
        const known = ['string', 'integer', 'number', 'boolean', 'array', 'object'];
        out.push(known.includes(expected)
          ? { path: at, key: `type.${expected}` }
          : { path: at, key: 'type.other', params: { type: expected } });
        break;
      }
      case 'enum': out.push({ path: at, key: 'enum' }); break;
      case 'const': out.push({ path: at, key: 'const' }); break;
      case 'pattern': out.push({ path: at, key: 'pattern' }); break;
      case 'format': {
        const name = /format "(.*)"\.$/.exec(error.error)?.[1] ?? '';
        if (name === 'cn-resident-id') {
          const problem = residentId(value);
          out.push({ path: at, key: problem.ok ? 'format' : `resident_id.${problem.problem}`, ...(problem.ok ? { params: { format: name } } : {}) });
        } else if (name === 'date' || name === 'cn-mobile') out.push({ path: at, key: `format.${name}` });
        else out.push({ path: at, key: 'format', params: { format: name } });
        break;
      }
      case 'minimum': case 'exclusiveMinimum':
        out.push({ path: at, key: 'minimum', params: { limit: limitIn(error.error) } }); break;
      case 'maximum': case 'exclusiveMaximum':
        out.push({ path: at, key: 'maximum', params: { limit: limitIn(error.error) } }); break;
      case 'minLength': {
        const limit = limitIn(error.error);
        out.push(limit === 1 ? { path: at, key: 'not_empty' } : { path: at, key: 'min_length', params: { limit } });
        break;
      }
      case 'maxLength': out.push({ path: at, key: 'max_length', params: { limit: limitIn(error.error) } }); break;
      case 'minItems': out.push({ path: at, key: 'min_items', params: { limit: limitIn(error.error) } }); break;
      case 'maxItems': out.push({ path: at, key: 'max_items', params: { limit: limitIn(error.error) } }); break;
      case 'uniqueItems': out.push({ path: at, key: 'unique_items' }); break;
      default:
        if (!WRAPPERS.has(error.keyword)) out.push({ path: at, key: 'other', params: { text: error.error } });
    }
  }
  return out;
}

function lookup(data, pointer) {
  return pointer.split('/').slice(1).reduce((node, s) => node?.[s.replace(/~1/g, '/').replace(/~0/g, '~')], data);
}

/** Every object `x-rules` apply to, as the server finds them: the root, objects and the items of
 * array properties, following `properties` and `items` only. */
function ruleSites(schema, data, pointer, out) {
  if (Array.isArray(schema?.['x-rules']) && data && typeof data === 'object') out.push({ rules: schema['x-rules'], schema, object: data, pointer });
  for (const [name, child] of Object.entries(schema?.properties ?? {})) {
    const value = data?.[name];
    if (child?.items !== undefined) {
      if (Array.isArray(value)) value.forEach((item, i) => ruleSites(child.items, item, `${join(pointer, name)}/${i}`, out));
    } else if (child?.properties !== undefined && value && typeof value === 'object' && !Array.isArray(value)) {
      ruleSites(child, value, join(pointer, name), out);
    }
  }
  return out;
}

/** `compare` rules' operators: the message key of a failure, and whether an ordering holds. */
const COMPARISONS = {
  '<': ['compare.lt', (o) => o < 0], '<=': ['compare.le', (o) => o <= 0], '>': ['compare.gt', (o) => o > 0],
  '>=': ['compare.ge', (o) => o >= 0], '=': ['compare.eq', (o) => o === 0], '!=': ['compare.ne', (o) => o !== 0],
};

/** The title of the property at `pointer` in an object's schema (else its name), as the server names it. */
function titleAt(schema, pointer) {
  let node = schema;
  let name = '';
  for (const segment of pointer.split('/').slice(1)) {
    name = segment.replace(/~1/g, '/').replace(/~0/g, '~');
    node = node?.properties?.[name];
  }
  return typeof node?.title === 'string' ? node.title : name;
}

/** A compare rule's failure in `object`, or undefined: numbers as numbers, texts as text (by code point). */
function compared(rule, siteSchema, object, pointer) {
  const [key, holds] = COMPARISONS[rule.op] ?? [];
  const a = lookup(object, rule.left);
  const b = lookup(object, rule.right);
  let order;
  if (typeof a === 'number' && typeof b === 'number') order = Math.sign(a - b);
  else if (typeof a === 'string' && typeof b === 'string') order = codePointOrder(a, b);
  else return undefined;
  if (!key || holds(order)) return undefined;
  return { path: pointer + rule.left, key, params: { other: titleAt(siteSchema, rule.right) } };
}

function codePointOrder(a, b) {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d !== 0) return Math.sign(d);
  }
  return Math.sign(x.length - y.length);
}

function fromRules(schema, data) {
  const out = [];
  for (const { rules, schema: siteSchema, object, pointer } of ruleSites(schema, data, '', [])) {
    for (const rule of rules) {
      if (rule.rule === 'compare') {
        const failure = compared(rule, siteSchema, object, pointer);
        if (failure) out.push(failure);
        continue;
      }
      const id = lookup(object, rule.id);
      if (typeof id !== 'string') continue;
      const read = residentId(id);
      if (!read.ok) continue;
      if (rule.rule === 'resident-id-birth-date') {
        const given = lookup(object, rule.birth_date);
        if (typeof given === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(given) && format.date(given) && given !== read.birthDate) {
          out.push({ path: pointer + rule.birth_date, key: 'id_birth_date' });
        }
      } else if (rule.rule === 'resident-id-gender') {
        const given = lookup(object, rule.gender);
        if (typeof given === 'string' && given !== (read.male ? rule.male : rule.female)) {
          out.push({ path: pointer + rule.gender, key: 'id_gender' });
        }
      }
    }
  }
  return out;
}

/** Every problem of `data` against the form's schema; the rules are checked once the schema passes. */
export function problems(schema, data) {
  const found = fromSchema(schema, data);
  return found.length > 0 ? found : fromRules(schema, data);
}
