// Everything the phone keeps, in IndexedDB: the session, settings, cached forms and the server's
// message catalogues (`kv`, `forms`), questionnaires being filled (`drafts`) and completed ones
// waiting for or past upload (`outbox`). Writes that hold a worker's answers are `strict`: the
// promise resolves once they are on the phone's disk, not merely handed to it, so a reload or a dead
// battery right after keeps them.

import { openDB } from '../vendor/idb/index.js';

const database = openDB('survey', 1, {
  upgrade(db) {
    db.createObjectStore('kv');
    db.createObjectStore('forms', { keyPath: 'id' });
    db.createObjectStore('drafts', { keyPath: 'id' });
    db.createObjectStore('outbox', { keyPath: 'id' });
  },
});

const STRICT = { durability: 'strict' };

/** Asks the browser not to evict the app's storage when the phone runs short of space. */
export async function keep() {
  try {
    return (await navigator.storage?.persisted?.()) || (await navigator.storage?.persist?.());
  } catch {
    return false;
  }
}

export async function getValue(key) {
  return (await database).get('kv', key);
}

export async function setValue(key, value) {
  const db = await database;
  if (value === undefined) return db.delete('kv', key);
  return db.put('kv', value, key);
}

export async function forms() {
  return (await database).getAll('forms');
}

export async function form(id) {
  return (await database).get('forms', id);
}

export async function saveForm(record) {
  return (await database).put('forms', record);
}

export async function drafts() {
  return (await database).getAll('drafts');
}

export async function draft(id) {
  return (await database).get('drafts', id);
}

/**
 * Saves a draft, unless it has been submitted meanwhile (in another tab, or by a late write):
 * a questionnaire in the outbox never comes back as a draft under the same id.
 */
export async function saveDraft(record) {
  const db = await database;
  const tx = db.transaction(['drafts', 'outbox'], 'readwrite', STRICT);
  const queued = await tx.objectStore('outbox').getKey(record.id);
  if (queued === undefined) await tx.objectStore('drafts').put(record);
  await tx.done;
  return queued === undefined;
}

export async function deleteDraft(id) {
  return (await database).delete('drafts', id);
}

export async function outbox() {
  return (await database).getAll('outbox');
}

export async function saveOutboxItem(item) {
  const db = await database;
  const tx = db.transaction('outbox', 'readwrite', STRICT);
  await Promise.all([tx.store.put(item), tx.done]);
}

export async function deleteOutboxItems(ids) {
  const db = await database;
  const tx = db.transaction('outbox', 'readwrite');
  await Promise.all([...ids.map((id) => tx.store.delete(id)), tx.done]);
}

/** A completed questionnaire enters the outbox and leaves the drafts in one transaction. */
export async function queue(item, draftId) {
  const db = await database;
  const tx = db.transaction(['outbox', 'drafts'], 'readwrite', STRICT);
  await Promise.all([tx.objectStore('outbox').add(item), tx.objectStore('drafts').delete(draftId), tx.done]);
}

/**
 * An upload the server refused with reasons goes back to the worker as a new draft, in one
 * transaction, and only if the item still waits (another tab may have settled it already).
 */
export async function returnToDrafts(item, newDraft, waiting) {
  const db = await database;
  const tx = db.transaction(['outbox', 'drafts'], 'readwrite', STRICT);
  const current = await tx.objectStore('outbox').get(item.id);
  const settle = current !== undefined && waiting.has(current.state);
  if (settle) {
    await tx.objectStore('outbox').put(item);
    await tx.objectStore('drafts').put(newDraft);
  }
  await tx.done;
  return settle;
}
