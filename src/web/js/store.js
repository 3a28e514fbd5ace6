// Everything the phone keeps, in IndexedDB: the session, settings, cached forms and the server's
// message catalogues (`kv`, `forms`), questionnaires being filled (`drafts`), completed ones
// waiting for or past upload (`outbox`), and their photos, signatures and recordings (`files`,
// by questionnaire id and file name, the bytes as a Blob), and the register's households of the
// worker's places (`roster`, by form and household id; wiped at sign-out). Writes that hold a worker's answers are `strict`: the
// promise resolves once they are on the phone's disk, not merely handed to it, so a reload or a dead
// battery right after keeps them.

import { openDB } from '../vendor/idb/index.js';

const database = openDB('survey', 3, {
  // An open tab of an older build holds the database while this one upgrades it: it is asked
  // to close (below, from this build on); until then the app says why it waits.
  blocked() {
    dispatchEvent(new Event('survey-storage-blocked'));
  },
  // A newer build in another tab needs the database: this one lets go and reloads as it.
  blocking() {
    database.then((db) => db.close());
    location.reload();
  },
  upgrade(db, from) {
    if (from < 1) {
      db.createObjectStore('kv');
      db.createObjectStore('forms', { keyPath: 'id' });
      db.createObjectStore('drafts', { keyPath: 'id' });
      db.createObjectStore('outbox', { keyPath: 'id' });
    }
    if (from < 2) db.createObjectStore('files', { keyPath: ['owner', 'name'] }).createIndex('owner', 'owner');
    if (from < 3) db.createObjectStore('roster', { keyPath: ['form', 'household_id'] }).createIndex('form', 'form');
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

/** Deletes a draft and the photos, signatures and recordings taken for it. */
export async function deleteDraft(id) {
  const db = await database;
  const tx = db.transaction(['drafts', 'files'], 'readwrite');
  const files = tx.objectStore('files');
  const keys = await files.index('owner').getAllKeys(id);
  await Promise.all([tx.objectStore('drafts').delete(id), ...keys.map((key) => files.delete(key)), tx.done]);
}

export async function outbox() {
  return (await database).getAll('outbox');
}

export async function saveOutboxItem(item) {
  const db = await database;
  const tx = db.transaction('outbox', 'readwrite', STRICT);
  await Promise.all([tx.store.put(item), tx.done]);
}

/** Forgets outbox items, and what is left of their files. */
export async function deleteOutboxItems(ids) {
  const db = await database;
  const tx = db.transaction(['outbox', 'files'], 'readwrite');
  const files = tx.objectStore('files');
  const keys = (await Promise.all(ids.map((id) => files.index('owner').getAllKeys(id)))).flat();
  await Promise.all([...ids.map((id) => tx.objectStore('outbox').delete(id)), ...keys.map((key) => files.delete(key)), tx.done]);
}

/**
 * A completed questionnaire enters the outbox and leaves the drafts in one transaction; the files
 * its answers name (`names`) wait to follow it, and those it no longer names (a photo taken again)
 * are dropped.
 */
export async function queue(item, draftId, names = []) {
  const db = await database;
  const tx = db.transaction(['outbox', 'drafts', 'files'], 'readwrite', STRICT);
  const files = tx.objectStore('files');
  const kept = await files.index('owner').getAll(draftId);
  await Promise.all([
    tx.objectStore('outbox').add(item),
    tx.objectStore('drafts').delete(draftId),
    ...kept.map((file) => (names.includes(file.name)
      ? files.put({ ...file, owner: item.id, state: 'waiting' })
      : files.delete([file.owner, file.name]))),
    tx.done,
  ]);
}

/** The roster of `form` kept on the phone: households in the shape of the form's answers. */
export async function roster(form) {
  return (await (await database).getAllFromIndex('roster', 'form', form)).map((kept) => kept.answers);
}

/**
 * Takes in a page of `form`'s roster: its households (new or changed) and the ones the register
 * no longer has, and the register version it is now at, in one transaction.
 */
export async function saveRoster(form, version, households, removed) {
  const db = await database;
  const tx = db.transaction(['roster', 'kv'], 'readwrite');
  const kept = tx.objectStore('roster');
  await Promise.all([
    ...households.map((answers) => kept.put({ form, household_id: String(answers.household_id), answers })),
    ...removed.map((id) => kept.delete([form, id])),
    tx.objectStore('kv').put(version, `roster-version:${form}`),
    tx.done,
  ]);
}

/** Forgets every roster (at sign-out: the next worker may have other places). */
export async function clearRosters() {
  const db = await database;
  const tx = db.transaction(['roster', 'kv'], 'readwrite');
  const versions = (await tx.objectStore('kv').getAllKeys()).filter((k) => String(k).startsWith('roster-version:'));
  await Promise.all([tx.objectStore('roster').clear(), ...versions.map((k) => tx.objectStore('kv').delete(k)), tx.done]);
}

/** A photo, signature or recording of questionnaire `owner`, kept on the phone until it is uploaded. */
export async function saveFile(file) {
  const db = await database;
  const tx = db.transaction('files', 'readwrite', STRICT);
  await Promise.all([tx.store.put(file), tx.done]);
}

export async function file(owner, name) {
  return (await database).get('files', [owner, name]);
}

export async function files() {
  return (await database).getAll('files');
}



/**
 * An upload the server refused with reasons goes back to the worker as a new draft, in one
 * transaction, and only if the item still waits (another tab may have settled it already).
 */
export async function returnToDrafts(item, newDraft, waiting) {
  const db = await database;
  const tx = db.transaction(['outbox', 'drafts', 'files'], 'readwrite', STRICT);
  const current = await tx.objectStore('outbox').get(item.id);
  const settle = current !== undefined && waiting.has(current.state);
  if (settle) {
    await tx.objectStore('outbox').put(item);
    await tx.objectStore('drafts').put(newDraft);
    // Its files go back with it, to the new questionnaire.
    const files = tx.objectStore('files');
    for (const kept of await files.index('owner').getAll(item.id)) {
      await files.delete([kept.owner, kept.name]);
      await files.put({ ...kept, owner: newDraft.id, state: 'local', url: undefined });
    }
  }
  await tx.done;
  return settle;
}
