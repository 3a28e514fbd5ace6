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
  return store.forms();
}

/** The schema of one version, if the phone has it. */
export async function schemaOf(formId, version) {
  return (await store.form(formId))?.schemas?.[version];
}
