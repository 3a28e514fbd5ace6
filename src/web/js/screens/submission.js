// One of the worker's own submissions: its review state, the supervisor's comments, its answers,
// and the way to correct it (a new submission that names the old one in `meta.replaces`).

import { html, useState, useEffect, useRef } from '../../vendor/htm-preact-standalone.js';
import * as api from '../api.js';
import * as store from '../store.js';
import * as drafts from '../drafts.js';
import { AnswerList } from '../answers.js';

/**
 * A correction is a new questionnaire: the files its answers name go with it, from this phone if
 * it still has them, else from the server. One that cannot be had now is left for the worker to
 * take again.
 */
async function carryFiles(submission, draftId) {
  for (const file of submission.attachments ?? []) {
    if (!file.present) continue;
    let blob = (await store.file(submission.id, file.name))?.blob;
    if (!blob) {
      try {
        blob = await api.blob(`/api/v1/submissions/${submission.id}/attachments/${encodeURIComponent(file.name)}`);
      } catch {
        continue;
      }
    }
    await store.saveFile({
      owner: draftId, name: file.name, type: file.type, blob, size: blob.size, sha256: file.sha256,
      state: 'local', added_at: new Date().toISOString(),
    });
  }
}

export function Submission({ w, lang, session, go, id }) {
  const [submission, setSubmission] = useState(null);
  const [comments, setComments] = useState([]);
  const [schema, setSchema] = useState(null);
  const [error, setError] = useState('');

  useEffect(() => {
    (async () => {
      try {
        const { body } = await api.call(`/api/v1/submissions/${encodeURIComponent(id)}`);
        setSubmission(body);
        const form = await store.form(body.form);
        setSchema(form?.schemas?.[body.form_version] ?? null);
        setComments((await api.call(`/api/v1/submissions/${encodeURIComponent(id)}/comments`)).body.items);
      } catch (e) {
        setError(e instanceof api.Offline ? w.network_needed : e.message);
      }
    })();
  }, [id]);

  const busy = useRef(false);
  const correct = async () => {
    if (busy.current) return;
    busy.current = true;
    // One correction per submission: one already begun is continued.
    const begun = await drafts.correctionOf(submission.id, session.username);
    if (begun) return go(`/fill/${begun.id}`);
    const form = await store.form(submission.form);
    const draft = await drafts.start(
      { ...form, version: submission.form_version },
      session,
      { answers: submission.data, replaces: submission.id },
    );
    await carryFiles(submission, draft.id);
    go(`/fill/${draft.id}`);
  };

  if (error) return html`<p class="warning">${error}</p><button type="button" onClick=${() => go('/')}>${w.back}</button>`;
  if (!submission) return html`<p class="loading">${w.loading}</p>`;
  return html`
    <section class="card">
      <h2>${drafts.summaryOf(submission.data) || submission.id}</h2>
      <p><span class=${`tag ${submission.status}`}>${w.review[submission.status] ?? submission.status}</span></p>
      <h3>${w.comments}</h3>
      ${comments.length === 0 ? html`<p>${w.no_comments}</p>` : html`
        <ul class="comments">${comments.map((c) => html`
          <li key=${c.seq}><p>${c.text}</p><p class="detail">${c.author} · ${new Date(c.at).toLocaleString(lang)}</p></li>`)}
        </ul>`}
      <div class="stack">
        ${schema && html`<button type="button" class="primary" onClick=${correct}>${w.correct_and_resend}</button>`}
        <button type="button" onClick=${() => go('/')}>${w.back}</button>
      </div>
      ${schema && html`<${AnswerList} root=${schema} schema=${schema} data=${submission.data} lang=${lang} w=${w} />`}
    </section>`;
}
