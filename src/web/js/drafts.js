// Starting, resuming and naming questionnaires being filled.

import * as store from './store.js';
import { initial } from './schema/walk.js';

/** Today's time as RFC 3339 with the phone's offset: `2026-03-01T08:10:00+08:00`. */
export function now(date = new Date()) {
  const pad = (n) => String(Math.abs(n)).padStart(2, '0');
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}${sign}${pad(Math.trunc(offset / 60))}:${pad(offset % 60)}`;
}

/** A new questionnaire: its id is made here, on the phone, and never changes. */
export async function start(form, username, { answers, replaces } = {}) {
  const draft = {
    id: crypto.randomUUID(),
    form: form.id,
    form_version: form.version,
    username,
    answers: answers ?? initial(form.schemas[form.version], form.schemas[form.version]),
    started_at: now(),
    updated_at: new Date().toISOString(),
    ...(replaces ? { replaces } : {}),
  };
  await store.saveDraft(draft);
  return draft;
}

/** How a worker recognises a questionnaire in a list: its household number and village. */
export function summaryOf(answers) {
  return [answers?.household_id, answers?.village].filter((s) => typeof s === 'string' && s.trim()).join(' · ');
}
