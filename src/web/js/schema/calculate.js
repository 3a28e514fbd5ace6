// XLSForm calculations (`x-calculation`) that the phone computes and sends: arithmetic (`+ - *
// div mod` and parentheses) of numbers and of answers named `${name}`, found in the same object or
// one above it (a repeat's item sees the household's answers). Anything else, or an unanswered
// name, leaves the value out: the server stores what the phone sends and nothing more.
// Pure: `node --test` checks it.

import { deref, numberFrom } from './walk.js';

/** The tokens of an expression, or undefined when it is outside the subset. */
function tokenize(text) {
  const tokens = [];
  const pattern = /\s*(?:(\d+(?:\.\d+)?|\.\d+)|\$\{\s*([A-Za-z_][\w.-]*)\s*\}|(div|mod)\b|([-+*()]))/y;
  let at = 0;
  while (at < text.length) {
    if (/^\s*$/.test(text.slice(at))) break;
    pattern.lastIndex = at;
    const m = pattern.exec(text);
    if (!m) return undefined;
    tokens.push(m[1] !== undefined ? { number: Number(m[1]) } : m[2] !== undefined ? { name: m[2] } : { op: m[3] ?? m[4] });
    at = pattern.lastIndex;
  }
  return tokens;
}

/** The value of `expression` with `lookup(name)` giving answers as numbers, or undefined. */
export function evaluate(expression, lookup) {
  const tokens = tokenize(String(expression ?? ''));
  if (!tokens || tokens.length === 0) return undefined;
  let i = 0;
  const peek = () => tokens[i]?.op;
  const factor = () => {
    const token = tokens[i++];
    if (!token) return NaN;
    if (token.op === '-') return -factor();
    if (token.op === '(') {
      const inner = sum();
      return tokens[i++]?.op === ')' ? inner : NaN;
    }
    if (token.number !== undefined) return token.number;
    if (token.name !== undefined) return lookup(token.name) ?? NaN;
    return NaN;
  };
  const product = () => {
    let value = factor();
    while (['*', 'div', 'mod'].includes(peek())) {
      const op = tokens[i++].op;
      const right = factor();
      value = op === '*' ? value * right : op === 'div' ? value / right : value % right;
    }
    return value;
  };
  const sum = () => {
    let value = product();
    while (peek() === '+' || peek() === '-') {
      const op = tokens[i++].op;
      const right = product();
      value = op === '+' ? value + right : value - right;
    }
    return value;
  };
  const value = sum();
  return i === tokens.length && Number.isFinite(value) ? value : undefined;
}

/** The answers with every calculation of the form computed (or left out), at every depth. */
export function calculated(root, answers) {
  return walk(root, deref(root, root), answers, []);
}

function walk(root, schema, value, scopes) {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
  let out = value;
  // Calculations see what was computed before them (`out`), in this object and those above.
  const chain = () => [out, ...scopes];
  const lookup = (name) => {
    const found = chain().find((scope) => scope && scope[name] !== undefined);
    const number = found ? numberFrom(found[name]) : undefined;
    return typeof number === 'number' ? number : undefined;
  };
  const set = (name, next) => {
    if (out[name] === next) return;
    if (out === value) out = { ...value };
    if (next === undefined) delete out[name];
    else out[name] = next;
  };
  for (const [name, raw] of Object.entries(schema.properties ?? {})) {
    const child = deref(root, raw);
    if (typeof child?.['x-calculation'] === 'string') {
      const result = evaluate(child['x-calculation'], lookup);
      set(name, result === undefined ? undefined : Math.round(result * 1e9) / 1e9);
    } else if (child?.properties && value[name] !== undefined) {
      set(name, walk(root, child, value[name], chain()));
    } else if (child?.items && Array.isArray(value[name])) {
      const items = deref(root, child.items);
      const next = value[name].map((item) => walk(root, items, item, chain()));
      if (next.some((item, k) => item !== value[name][k])) set(name, next);
    }
  }
  return out;
}
