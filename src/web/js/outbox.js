// The outbox: completed questionnaires waiting for the server, and their fate once it answered.
// An item's body is written once, when it is queued, and sent byte for byte on every try, so a retry
// after a lost answer is a replay the server recognises, never a duplicate or a conflict.

import * as api from './api.js';
import * as store from './store.js';
import * as uploads from './uploads.js';
import { newId } from './drafts.js';

/** At most this many questionnaires per request: a 2G upload should finish before the signal goes. */
const BATCH = 25;
const FIRST_RETRY_MS = 5_000;
const LAST_RETRY_MS = 300_000;
/** Sent questionnaires stay listed (and their answers on the phone) this long. */
const KEEP_SENT_MS = 30 * 24 * 3600 * 1000;

/**
 * Item states: waiting (`queued`, or `retrying` after the network or the server failed), `sent`,
 * `returned` (refused with reasons: back among the drafts as a new questionnaire), `conflict`
 * (the server holds other content under this id).
 */
export const WAITING = new Set(['queued', 'retrying']);

let running = null;
let again = false;
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

/** Queues a completed questionnaire (and drops its draft); the files named in `files` follow it. */
export async function add({ envelope, form, username, summary, files = [] }, draftId) {
  await store.queue({
    id: envelope.id,
    form,
    username,
    summary,
    body: JSON.stringify(envelope),
    state: 'queued',
    attempts: 0,
    queued_at: new Date().toISOString(),
  }, draftId, files);
  changed();
}

/**
 * Sends what waits; resolves when the outbox is settled or the network gave up. A call during a
 * round runs another round after it (the item just queued may not be in the running one), and
 * tabs of the same phone take turns (`navigator.locks`), so an answer is never settled twice.
 */
export function sync() {
  if (running) {
    again = true;
    return running;
  }
  running = (async () => {
    let outcome;
    do {
      again = false;
      try {
        outcome = await exclusively(round);
      } catch {
        // Storage or the lock failed: nothing was settled; try again later.
        failures += 1;
        retryLater();
        outcome = { ok: false, reason: 'offline' };
      }
    } while (again && outcome.ok);
    return outcome;
  })().finally(() => {
    running = null;
    changed();
  });
  return running;
}

function exclusively(task) {
  return navigator.locks ? navigator.locks.request('survey-outbox', task) : task();
}

async function round() {
  clearTimeout(timer);
  const me = await api.session();
  if (!me || me.expired) return { ok: false, reason: 'needs_sign_in' };
  const all = await items();
  await forget(all);
  const waiting = all.filter((i) => WAITING.has(i.state) && i.username === me.username);
  try {
    for (let start = 0; start < waiting.length; start += BATCH) {
      const byForm = new Map();
      for (const item of waiting.slice(start, start + BATCH)) {
        byForm.set(item.form, [...(byForm.get(item.form) ?? []), item]);
      }
      for (const [form, batch] of byForm) await sendBatch(form, batch);
    }
    // The files follow the questionnaires the server has; a questionnaire queued meanwhile goes
    // first (`again`: another round follows at once).
    await uploads.uploadWaiting(me.username, () => again);
  } catch (error) {
    if (error instanceof api.NeedsSignIn) return { ok: false, reason: 'needs_sign_in' };
    failures += 1;
    retryLater();
    return { ok: false, reason: 'offline' };
  }
  // Items the server could not take this time (a fault, a timeout) are tried again later, backing
  // off for as long as it keeps failing them.
  if ((await items()).some((i) => i.state === 'retrying' && i.username === me.username)) {
    failures += 1;
    retryLater();
  } else {
    failures = 0;
  }
  return { ok: true };
}

function retryLater() {
  const delay = Math.min(LAST_RETRY_MS, FIRST_RETRY_MS * 2 ** (failures - 1)) * (0.75 + Math.random() / 2);
  timer = setTimeout(sync, delay);
}

/** Sent questionnaires older than a month leave the phone (the server has them), unless files of theirs still wait. */
async function forget(all) {
  const unsent = new Set((await store.files()).filter((f) => f.state !== 'sent' && f.state !== 'refused').map((f) => f.owner));
  const old = all.filter((i) => i.state === 'sent' && !unsent.has(i.id) && Date.now() - Date.parse(i.sent_at) > KEEP_SENT_MS);
  if (old.length) await store.deleteOutboxItems(old.map((i) => i.id));
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
    if (error instanceof api.ApiError && error.status === 413 && batch.length > 1) {
      // A proxy's smaller limit: halves, down to one questionnaire a request.
      const half = Math.ceil(batch.length / 2);
      await sendBatch(form, batch.slice(0, half));
      await sendBatch(form, batch.slice(half));
      return;
    }
    if (error instanceof api.ApiError && error.status === 413) {
      // A proxy's page has no code of ours: it is the same refusal as the server's own.
      await settle(batch[0], { status: 413, error: { code: 'body_too_large', message: error.message } });
      changed();
      return;
    }
    for (const item of batch) {
      await store.saveOutboxItem({ ...item, state: 'retrying', error: error instanceof api.ApiError ? { code: error.code, message: error.message } : undefined });
    }
    changed();
    // Whatever else the server said of the whole batch (signed out, a form withdrawn, a proxy's
    // error page), the questionnaires wait: none of it is a verdict on their answers.
    throw error instanceof api.NeedsSignIn ? error : new api.Offline();
  }
  const results = answer.body?.results ?? [];
  for (const [i, item] of batch.entries()) await settle(item, results[i]);
  changed();
}

async function settle(item, result) {
  if (!result || result.status >= 500 || result.status === 408 || result.status === 429) {
    await store.saveOutboxItem({ ...item, state: 'retrying' });
  } else if (result.status === 201) {
    await store.saveOutboxItem({ ...item, state: 'sent', receipt: result.receipt, sent_at: new Date().toISOString(), error: undefined });
  } else if (result.status === 409) {
    await store.saveOutboxItem({ ...item, state: 'conflict', error: result.error });
  } else {
    // Refused with a reason (invalid answers, a township outside the worker's scope, too large):
    // back to the worker as a new questionnaire (this id's content is spent) with the server's words.
    const envelope = JSON.parse(item.body);
    const id = newId();
    await store.returnToDrafts({ ...item, state: 'returned', returned_as: id, error: result.error }, {
      id,
      form: item.form,
      username: item.username,
      started_at: envelope.meta?.started_at,
      form_version: envelope.form_version,
      answers: envelope.data,
      meta: { ...envelope.meta, completed_at: undefined },
      returned_from: item.id,
      server_problems: result.error?.details ?? [],
      server_refusal: result.error?.details?.length ? undefined : { code: result.error?.code, message: result.error?.message },
      updated_at: new Date().toISOString(),
    }, WAITING);
  }
}

/** For the bar at the top: what of `username`'s still waits, conflicts, or came back to correct. */
export async function counts(username) {
  const mine = (await items()).filter((i) => i.username === username);
  const drafts = (await store.drafts()).filter((d) => d.username === username);
  // Files of questionnaires that went or will go; a conflict's never will.
  const owners = new Set(mine.filter((i) => i.state === 'sent' || WAITING.has(i.state)).map((i) => i.id));
  const files = (await store.files()).filter((f) => owners.has(f.owner));
  return {
    waiting: mine.filter((i) => WAITING.has(i.state)).length,
    files: files.filter((f) => f.state === 'waiting').length,
    refused_files: files.filter((f) => f.state === 'refused').length,
    conflicts: mine.filter((i) => i.state === 'conflict').length,
    returned: drafts.filter((d) => d.returned_from).length,
  };
}
