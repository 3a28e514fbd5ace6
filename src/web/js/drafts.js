// Starting, resuming and naming questionnaires, and the browser's clock and days as RFC 3339 times.

import * as store from './store.js';
import { initial } from './schema/walk.js';
import * as pointers from './schema/pointer.js';

/** Today's time as RFC 3339 with the phone's offset: `2026-03-01T08:10:00+08:00`. */
export function now(date = new Date()) {
  const pad = (n) => String(Math.abs(n)).padStart(2, '0');
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}${sign}${pad(Math.trunc(offset / 60))}:${pad(offset % 60)}`;
}

/** A day picked in a date field (`2026-03-01`) as the instant it begins, where this browser is. */
export const dayStart = (date) => now(new Date(`${date}T00:00:00`));

/** The instant the day after `date` begins: the end of a range of days, exclusive. */
export function dayAfter(date) {
  const day = new Date(`${date}T00:00:00`);
  day.setDate(day.getDate() + 1);
  return now(day);
}

/**
 * A random (version 4) UUID. `crypto.randomUUID` exists only on HTTPS pages; the app should be
 * served over HTTPS, but on a plain-HTTP address a worker can still fill and queue questionnaires.
 */
export function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A worker of one township has it filled in already (the form's `x-scope` field). */
function prefilled(schema, scope) {
  let answers = initial(schema, schema);
  const field = schema['x-scope'];
  if (typeof field === 'string' && scope?.length === 1) answers = pointers.set(answers, field, scope[0]);
  return answers;
}

/**
 * A new questionnaire: its id is made here, on the phone, and never changes. It starts from
 * `answers` (a correction), or from a `registered` household of the roster over what the form
 * fills in itself, or from that alone.
 */
export async function start(form, session, { answers, replaces, registered } = {}) {
  const own = () => prefilled(form.schemas[form.version], session.scope);
  const draft = {
    id: newId(),
    form: form.id,
    form_version: form.version,
    username: session.username,
    answers: answers ?? { ...own(), ...(registered ?? {}) },
    started_at: now(),
    updated_at: new Date().toISOString(),
    ...(replaces ? { replaces } : {}),
  };
  await store.saveDraft(draft);
  return draft;
}

/** The worker's unfinished correction of submission `id`, if they began one. */
export async function correctionOf(id, username) {
  return (await store.drafts()).find((d) => d.replaces === id && d.username === username);
}

/** The problem the server would answer with 403: the form's place field outside the worker's places. */
export function outsideScope(schema, data, scope) {
  const field = schema['x-scope'];
  if (typeof field !== 'string' || !Array.isArray(scope)) return undefined;
  const place = pointers.get(data, field);
  return typeof place === 'string' && !scope.includes(place) ? field : undefined;
}

/** How a worker recognises a questionnaire in a list: its household number and village. */
export function summaryOf(answers) {
  return [answers?.household_id, answers?.village].filter((s) => typeof s === 'string' && s.trim()).join(' · ');
}
