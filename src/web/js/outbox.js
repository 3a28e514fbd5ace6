// The outbox: completed questionnaires waiting for the server, and their fate once it answered.
// An item's body is written once, when it is queued, and sent byte for byte on every try, so a retry
// after a lost answer is a replay the server recognises, never a duplicate or a conflict.

import * as api from './api.js';
import * as store from './store.js';

/** At most this many questionnaires per request: a 2G upload should finish before the signal goes. */
const BATCH = 25;
const FIRST_RETRY_MS = 5_000;
const LAST_RETRY_MS = 300_000;

/** Item states: waiting (`queued`, or `retrying` after a network failure), `sent`, or for the worker: `conflict`, `failed`, `returned`. */
export const WAITING = new Set(['queued', 'retrying']);

let running = null;
let timer = null;
let failures = 0;
const listeners = new Set();

/** Called with nothing whenever the outbox changes. */
export function subscribe(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

const changed = () => listeners.forEach((listener) => listener());

export async function items() {
  return (await store.outbox()).sort((a, b) => a.queued_at.localeCompare(b.queued_at));
}

/** Queues a completed questionnaire (and drops its draft). */
export async function add({ envelope, form, username, summary }, draftId) {
  await store.queue({
    id: envelope.id,
    form,
    username,
    summary,
    body: JSON.stringify(envelope),
    state: 'queued',
    attempts: 0,
    queued_at: new Date().toISOString(),
  }, draftId);
  changed();
}

/** Sends what waits, one form's batch at a time; resolves when this round is over. */
export function sync() {
  running ??= round().finally(() => {
    running = null;
    changed();
  });
  return running;
}

async function round() {
  clearTimeout(timer);
  const me = await api.session();
  if (!me) return { ok: false, reason: 'needs_sign_in' };
  const waiting = (await items()).filter((i) => WAITING.has(i.state) && i.username === me.username);
  try {
    for (let start = 0; start < waiting.length; start += BATCH) {
      const byForm = new Map();
      for (const item of waiting.slice(start, start + BATCH)) {
        byForm.set(item.form, [...(byForm.get(item.form) ?? []), item]);
      }
      for (const [form, batch] of byForm) await sendBatch(form, batch);
    }
    failures = 0;
    return { ok: true };
  } catch (error) {
    if (error instanceof api.NeedsSignIn) return { ok: false, reason: 'needs_sign_in' };
    // Offline, a lost answer or a server fault: everything stays queued and is tried again later.
    failures += 1;
    const delay = Math.min(LAST_RETRY_MS, FIRST_RETRY_MS * 2 ** (failures - 1)) * (0.75 + Math.random() / 2);
    timer = setTimeout(sync, delay);
    return { ok: false, reason: 'offline' };
  }
}

async function sendBatch(form, batch) {
  for (const item of batch) {
    item.attempts += 1;
    item.tried_at = new Date().toISOString();
    await store.saveOutboxItem(item);
  }
  const body = `{"submissions":[${batch.map((i) => i.body).join(',')}]}`;
  let answer;
  try {
    answer = await api.call(`/api/v1/forms/${encodeURIComponent(form)}/submissions/batch`, { method: 'POST', body });
  } catch (error) {
    if (error instanceof api.ApiError && error.status < 500 && error.status !== 408 && error.status !== 429) {
      for (const item of batch) await store.saveOutboxItem({ ...item, state: 'failed', error: { code: error.code, message: error.message } });
      changed();
      return;
    }
    for (const item of batch) await store.saveOutboxItem({ ...item, state: 'retrying' });
    changed();
    throw error instanceof api.ApiError ? new api.Offline() : error;
  }
  const results = answer.body?.results ?? [];
  for (const [i, item] of batch.entries()) await settle(item, results[i]);
  changed();
}

async function settle(item, result) {
  if (!result || result.status >= 500 || result.status === 408) {
    await store.saveOutboxItem({ ...item, state: 'retrying' });
  } else if (result.status === 201) {
    await store.saveOutboxItem({ ...item, state: 'sent', receipt: result.receipt, sent_at: new Date().toISOString() });
  } else if (result.status === 409) {
    await store.saveOutboxItem({ ...item, state: 'conflict', error: result.error });
  } else if (result.status === 422 && result.error?.code === 'validation_failed') {
    // Back to the worker as a new questionnaire (a new id: this one's content is spent), with the server's reasons.
    const envelope = JSON.parse(item.body);
    const id = crypto.randomUUID();
    await store.returnToDrafts({ ...item, state: 'returned', returned_as: id, error: result.error }, {
      id,
      form: item.form,
      username: item.username,
      started_at: envelope.meta?.started_at,
      form_version: envelope.form_version,
      answers: envelope.data,
      meta: { ...envelope.meta, completed_at: undefined },
      returned_from: item.id,
      server_problems: result.error.details ?? [],
      updated_at: new Date().toISOString(),
    });
  } else {
    await store.saveOutboxItem({ ...item, state: 'failed', error: result.error });
  }
}

/** How many questionnaires of `username` still wait for the server. */
export async function waitingCount(username) {
  return (await items()).filter((i) => WAITING.has(i.state) && i.username === username).length;
}
