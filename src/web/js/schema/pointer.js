// JSON Pointers (RFC 6901): how answers, errors and questions name a place in the data.

export const escape = (name) => String(name).replace(/~/g, '~0').replace(/\//g, '~1');
export const unescape = (segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~');

export const join = (pointer, name) => `${pointer}/${escape(name)}`;

export function segments(pointer) {
  return pointer === '' ? [] : pointer.split('/').slice(1).map(unescape);
}

export function get(value, pointer) {
  let current = value;
  for (const segment of segments(pointer)) {
    if (current === null || typeof current !== 'object') return undefined;
    current = current[segment];
  }
  return current;
}

/** A copy of `value` with `pointer` set (or removed, for `undefined`); objects and arrays on the way are created. */
export function set(value, pointer, next) {
  const parts = segments(pointer);
  if (parts.length === 0) return next;
  const [head, ...rest] = parts;
  const container = Array.isArray(value) ? [...value] : { ...(value ?? {}) };
  const child = rest.length === 0 ? next : set(container[head], rest.map((p) => `/${escape(p)}`).join(''), next);
  if (child === undefined && !Array.isArray(container)) delete container[head];
  else container[head] = child;
  return container;
}
