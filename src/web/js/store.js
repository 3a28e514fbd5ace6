// Everything the phone keeps, in IndexedDB: the session, settings, cached forms and the server's
// message catalogues (`kv`, `forms`), questionnaires being filled (`drafts`) and completed ones
// waiting for or past upload (`outbox`). Each write is its own transaction, committed before the
// promise resolves, so what was typed survives a reload or a dead battery.

import { openDB } from '../vendor/idb/index.js';

const database = openDB('survey', 1, {
  upgrade(db) {
    db.createObjectStore('kv');
    db.createObjectStore('forms', { keyPath: 'id' });
    db.createObjectStore('drafts', { keyPath: 'id' });
    db.createObjectStore('outbox', { keyPath: 'id' });
  },
});

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

export async function saveDraft(record) {
  return (await database).put('drafts', record);
}

export async function deleteDraft(id) {
  return (await database).delete('drafts', id);
}

export async function outbox() {
  return (await database).getAll('outbox');
}

export async function saveOutboxItem(item) {
  return (await database).put('outbox', item);
}

/** A completed questionnaire enters the outbox and leaves the drafts in one transaction. */
export async function queue(item, draftId) {
  const db = await database;
  const tx = db.transaction(['outbox', 'drafts'], 'readwrite');
  await Promise.all([tx.objectStore('outbox').add(item), tx.objectStore('drafts').delete(draftId), tx.done]);
}

/** An upload the server refused with reasons goes back to the worker as a new draft, in one transaction. */
export async function returnToDrafts(item, newDraft) {
  const db = await database;
  const tx = db.transaction(['outbox', 'drafts'], 'readwrite');
  await Promise.all([tx.objectStore('outbox').put(item), tx.objectStore('drafts').put(newDraft), tx.done]);
}
