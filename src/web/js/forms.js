// The forms a worker may fill, kept on the phone: the list and each version's schema that a draft uses.

import * as api from './api.js';
import * as store from './store.js';

/** Downloads the list, and the schema of every form whose current version the phone lacks. */
export async function refresh() {
  const { body } = await api.call('/api/v1/forms');
  const list = body.forms ?? [];
  for (const summary of list) {
    const kept = await store.form(summary.id);
    if (kept?.version === summary.current_version) {
      if (kept.title !== summary.title) await store.saveForm({ ...kept, title: summary.title });
      continue;
    }
    const { body: detail } = await api.call(`/api/v1/forms/${encodeURIComponent(summary.id)}`);
    await store.saveForm({
      id: summary.id,
      title: summary.title,
      version: detail.version,
      // Older versions stay while drafts filled against them may exist.
      schemas: { ...(kept?.schemas ?? {}), [detail.version]: detail.schema },
    });
  }
  for (const summary of list) await syncRoster(summary.id).catch(() => {});
  return store.forms();
}

/**
 * Brings the phone's roster of `form` up to the register's version: only what changed since the
 * version it has, a page at a time. A form without a register has none.
 */
async function syncRoster(form, attempts = 3) {
  const since = await store.getValue(`roster-version:${form}`);
  let cursor = null;
  for (;;) {
    const query = new URLSearchParams({ limit: '1000' });
    if (since !== undefined) query.set('since_version', String(since));
    if (cursor) query.set('cursor', cursor);
    let page;
    try {
      ({ body: page } = await api.call(`/api/v1/forms/${encodeURIComponent(form)}/registry?${query}`));
    } catch (error) {
      if (error instanceof api.ApiError && error.code === 'registry_not_found') return;
      // A new register version while paging: start again from the version the phone has.
      if (error instanceof api.ApiError && error.code === 'registry_changed' && attempts > 1) return syncRoster(form, attempts - 1);
      throw error;
    }
    // The version counts once the last page is in: a sync cut off halfway starts again from the one before.
    await store.saveRoster(form, page.next_cursor ? since : page.version, page.items, page.removed ?? []);
    if (!page.next_cursor) return;
    cursor = page.next_cursor;
  }
}

/**
 * The schema of one version: the phone's copy, else (a questionnaire of an older version came
 * back from the server to be corrected) the server's, kept from then on.
 */
export async function schemaOf(formId, version) {
  const kept = await store.form(formId);
  if (kept?.schemas?.[version]) return kept.schemas[version];
  try {
    const { body } = await api.call(`/api/v1/forms/${encodeURIComponent(formId)}?version=${encodeURIComponent(version)}`);
    if (kept) await store.saveForm({ ...kept, schemas: { ...kept.schemas, [version]: body.schema } });
    return body.schema;
  } catch {
    return undefined;
  }
}
