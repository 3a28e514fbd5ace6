// One of the worker's own submissions: its review state, the supervisor's comments, its answers,
// and the way to correct it (a new submission that names the old one in `meta.replaces`).

import { html, useState, useEffect, useRef } from '../../vendor/htm-preact-standalone.js';
import * as api from '../api.js';
import * as store from '../store.js';
import * as drafts from '../drafts.js';
import { AnswerList } from '../answers.js';
import { fileAnswers } from '../schema/walk.js';
import * as pointers from '../schema/pointer.js';

/**
 * A correction is a new questionnaire: the files its answers name go with it, from this phone if
 * it has them (also ones still waiting to go up), else from the server. An answer whose file
 * cannot be had now is cleared, so the worker is asked to take it again.
 */
async function carryFiles(schema, submission, draft) {
  let answers = draft.answers;
  for (const { path, name } of fileAnswers(schema, schema, submission.data)) {
    const listed = submission.attachments?.find((a) => a.name === name);
    const local = await store.file(submission.id, name);
    let blob = local?.blob;
    if (!blob && listed?.present) {
      blob = await api.blob(`/api/v1/submissions/${submission.id}/attachments/${encodeURIComponent(name)}`).catch(() => undefined);
    }
    if (!blob) {
      answers = pointers.set(answers, path, undefined);
      continue;
    }
    await store.saveFile({
      owner: draft.id, name, type: local?.type ?? listed?.type ?? blob.type, blob, size: blob.size,
      sha256: local?.sha256 ?? listed?.sha256, state: 'local', added_at: new Date().toISOString(),
    });
  }
  if (answers !== draft.answers) await store.saveDraft({ ...draft, answers });
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
    try {
      await carryFiles(schema, submission, draft);
    } finally {
      busy.current = false;
    }
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
