// After 提交: what happened to the questionnaire, and the way on.

import { html, useState, useEffect, useRef } from '../../vendor/htm-preact-standalone.js';
import * as outbox from '../outbox.js';
import * as store from '../store.js';
import * as drafts from '../drafts.js';

export function Done({ w, session, go, id }) {
  const [item, setItem] = useState(null);
  const busy = useRef(false);

  useEffect(() => {
    const load = async () => {
      const found = (await outbox.items()).find((i) => i.id === id);
      setItem(found?.username === session.username ? found : null);
    };
    load();
    return outbox.subscribe(load);
  }, [id]);

  const another = async () => {
    if (busy.current) return;
    busy.current = true;
    const form = await store.form(item.form);
    if (!form) return go('/');
    const draft = await drafts.start(form, session);
    go(`/fill/${draft.id}`);
  };

  if (item?.state === 'returned') {
    return html`
      <section class="card done">
        <h2>${w.returned}</h2>
        ${item.summary && html`<p>${item.summary}</p>`}
        <p class="warning">${w.server_refused}${w.refusals[item.error?.code] ?? item.error?.message ?? ''}</p>
        <div class="stack">
          <button type="button" class="primary" onClick=${() => go(`/fill/${item.returned_as}`, { replace: true })}>${w.continue_draft}</button>
          <button type="button" onClick=${() => go('/')}>${w.back_to_forms}</button>
        </div>
      </section>`;
  }

  return html`
    <section class="card done">
      <h2>${w.submitted}</h2>
      ${item?.summary && html`<p>${item.summary}</p>`}
      <p>${item?.state === 'sent' ? w.submitted_sent : w.submitted_queued}</p>
      <div class="stack">
        <button type="button" class="primary" onClick=${() => go('/')}>${w.back_to_forms}</button>
        ${item && html`<button type="button" onClick=${another}>${w.fill_another}</button>`}
      </div>
    </section>`;
}
