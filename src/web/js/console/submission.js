// One submission for a reviewer: its answers (repeated groups as tables), review state and the
// review buttons, comments, versions with what changed, and the audit trail where the role may
// see it. 上一份/下一份 walk the list it was opened from.

import { html, useState, useEffect, useLayoutEffect, useRef } from '../../vendor/htm-preact-standalone.js';
import * as api from '../api.js';
import { AnswerTables } from '../answers.js';
import { describe, fieldName, message } from '../schema/messages.js';
import { ObjectFields } from '../questions.js';
import { problems as findProblems } from '../schema/validate.js';
import { prune } from '../schema/walk.js';
import * as pointers from '../schema/pointer.js';
import { fileName, keep, size } from './save.js';

const REVIEWERS = ['supervisor', 'admin'];

async function schemaOf(formList, form, version) {
  const kept = formList.find((f) => f.id === form)?.schemas?.[version];
  if (kept) return kept;
  const { body } = await api.call(`/api/v1/forms/${encodeURIComponent(form)}?version=${encodeURIComponent(version)}`);
  return body.schema;
}

function queue() {
  try {
    return JSON.parse(sessionStorage.getItem('console-queue') ?? 'null');
  } catch {
    return null;
  }
}

/** Where `id` stands in the list it was opened from: the route back, and its neighbours. */
function queueAround(id) {
  const kept = queue();
  const at = kept?.ids?.indexOf(id) ?? -1;
  if (at < 0) return { route: kept?.route ?? '/console/submissions' };
  return {
    route: kept.route,
    previous: kept.ids[at - 1],
    next: kept.ids[at + 1],
    // At the page's end, the next page of the same list carries on.
    more: at === kept.ids.length - 1 && kept.next_cursor ? kept : null,
  };
}

/** The first household of the list's next page (which becomes the queue), if there is one. */
async function nextPage(kept) {
  const { body } = await api.call(`${kept.api}&cursor=${encodeURIComponent(kept.next_cursor)}`);
  const ids = body.items.map((s) => s.id);
  sessionStorage.setItem('console-queue', JSON.stringify({ ...kept, ids, next_cursor: body.next_cursor }));
  return ids[0];
}

/** Single keys for the reviewer's moves, unless typing (or with a modifier key held). */
function useShortcuts(keys) {
  // The latest actions: a key always acts on the household on screen now.
  const latest = useRef(keys);
  latest.current = keys;
  // Listening before the screen is painted: a key pressed as soon as a household shows counts.
  useLayoutEffect(() => {
    const press = (event) => {
      if (event.altKey || event.ctrlKey || event.metaKey || event.repeat) return;
      if (event.target.closest?.('input, textarea, select')) return;
      const action = latest.current[event.key.toLowerCase()];
      if (!action) return;
      event.preventDefault();
      action();
    };
    addEventListener('keydown', press);
    return () => removeEventListener('keydown', press);
  }, []);
}

/** One file of the household: a photo shown, a recording to play, each one to download. */
function FileCard({ c, id, file }) {
  const path = `/api/v1/submissions/${id}/attachments/${encodeURIComponent(file.name)}`;
  const shown = file.type.startsWith('image/') || file.type.startsWith('audio/');
  const [got, setGot] = useState(null);
  const [trouble, setTrouble] = useState('');
  useEffect(() => {
    if (!file.present || !shown) return undefined;
    let live = true;
    let url = null;
    api.file(path).then((got) => {
      if (!live) return;
      url = URL.createObjectURL(got.blob);
      setGot({ ...got, url });
    }, () => live && setTrouble(c.file_unreadable));
    return () => {
      live = false;
      if (url) URL.revokeObjectURL(url);
    };
  }, [path, file.present]);
  if (!file.present) return html`<figure><figcaption>${file.name} <span class="tag waiting">${c.file_missing}</span></figcaption></figure>`;
  const download = async () => {
    try {
      // Saved under the server's name for it: one that always opens as what it is.
      const { blob, disposition } = got ?? (await api.file(path));
      keep(blob, fileName(disposition, file.name));
    } catch {
      setTrouble(c.file_unreadable);
    }
  };
  return html`
    <figure>
      ${got && file.type.startsWith('image/') && html`<img src=${got.url} alt=${file.name} />`}
      ${got && file.type.startsWith('audio/') && html`<audio controls src=${got.url} aria-label=${file.name}></audio>`}
      <figcaption>${file.name} · ${size(file.size)}
        <button type="button" class="quiet" aria-label=${c.download_file(file.name)} onClick=${download}>${c.download}</button></figcaption>
      ${trouble && html`<p class="warning">${trouble}</p>`}
    </figure>`;
}

function Files({ c, submission }) {
  const files = submission.attachments ?? [];
  if (files.length === 0) return null;
  return html`
    <section aria-labelledby="files-h">
      <h3 id="files-h">${c.files}</h3>
      <ul class="attachments">${files.map((file) => html`<li key=${file.name}><${FileCard} c=${c} id=${submission.id} file=${file} /></li>`)}</ul>
    </section>`;
}

function Review({ c, w, id, status, onReviewed }) {
  const [comment, setComment] = useState('');
  const [message, setMessage] = useState('');
  const [busy, setBusy] = useState(false);
  const box = useRef(null);
  const sending = useRef(false);

  const decide = async (next) => {
    // One verdict at a time: a double click or a key pressed twice sends it once.
    if (sending.current) return;
    if (next !== 'approved' && !comment.trim()) {
      setMessage(c.needs_comment);
      box.current?.focus();
      return;
    }
    if (next === 'rejected' && !confirm(c.confirm_reject)) return;
    sending.current = true;
    setBusy(true);
    try {
      await api.call(`/api/v1/submissions/${encodeURIComponent(id)}/review`, {
        method: 'PATCH',
        body: JSON.stringify(comment.trim() ? { status: next, comment: comment.trim() } : { status: next }),
      });
      setComment('');
      setMessage(c.saved_review);
      onReviewed();
    } catch (e) {
      setMessage(e instanceof api.NeedsSignIn ? c.signed_out : e.status === 403 ? c.forbidden : e.message);
    } finally {
      sending.current = false;
      setBusy(false);
    }
  };

  useShortcuts({ a: () => decide('approved'), i: () => decide('has_issues'), r: () => decide('rejected') });

  return html`
    <section class="review" aria-labelledby="review-h">
      <h3 id="review-h">${c.status}: <span class=${`tag ${status}`}>${w.review[status] ?? status}</span></h3>
      <label for="review-comment">${c.comment_label}</label>
      <textarea id="review-comment" ref=${box} rows="3" maxlength="2000" value=${comment}
        onInput=${(e) => setComment(e.currentTarget.value)}></textarea>
      <div class="review-actions">
        <button type="button" class="primary" disabled=${busy} onClick=${() => decide('approved')}>${c.approve}</button>
        <button type="button" disabled=${busy} onClick=${() => decide('has_issues')}>${c.has_issues}</button>
        <button type="button" class="danger" disabled=${busy} onClick=${() => decide('rejected')}>${c.reject}</button>
      </div>
      <p class="detail">${c.shortcuts}</p>
      <p class="note" aria-live="polite">${message}</p>
    </section>`;
}

/**
 * A correction in the same schema-driven form as the field app; saved with `If-Match`, so a newer
 * version saved meanwhile is never overwritten (412: offered a reload instead).
 */
function Correction({ c, w, lang, catalogue, schema, submission, etag, onSaved, onStale, onCancel }) {
  const [answers, setAnswers] = useState(submission.data);
  const [shown, setShown] = useState([]);
  const [stale, setStale] = useState(false);
  const [error, setError] = useState('');

  const save = async () => {
    const data = prune(schema, schema, answers) ?? {};
    const found = findProblems(schema, data);
    setShown(found);
    if (found.length > 0) return;
    try {
      await api.call(`/api/v1/submissions/${encodeURIComponent(submission.id)}`, {
        method: 'PUT', body: JSON.stringify({ data }), headers: { 'if-match': etag },
      });
      onSaved();
    } catch (e) {
      if (e.status === 412) setStale(true);
      else if (e.code === 'validation_failed') setShown(e.details);
      else setError(e.status === 403 ? c.forbidden : e.message);
    }
  };
  const problemsAt = (pointer) => shown.filter((p) => p.path === pointer)
    .map((p) => (p.key ? describe(catalogue, p.key, p.params) : p.message));
  return html`
    <section class="correction" aria-labelledby="correction-h">
      <h3 id="correction-h">${c.correct}</h3>
      ${shown.length > 0 && html`<div class="problems" role="alert"><h3>${w.problems(shown.length)}</h3>
        <ul>${shown.map((p) => html`<li>${p.key ? message(catalogue, schema, p, lang) : p.message}</li>`)}</ul></div>`}
      <div class="questionnaire">
        <${ObjectFields} root=${schema} schema=${schema} pointer="" value=${answers} lang=${lang} w=${w} problemsAt=${problemsAt}
          onChange=${(pointer, value) => setAnswers((current) => pointers.set(current, pointer, value))} />
      </div>
      ${stale && html`<p class="warning" role="alert">${c.stale} <button type="button" onClick=${onStale}>${c.reload}</button></p>`}
      ${error && html`<p class="warning" role="alert">${error}</p>`}
      <div class="review-actions">
        <button type="button" class="primary" onClick=${save}>${c.save_correction}</button>
        <button type="button" class="quiet" onClick=${onCancel}>${c.cancel}</button>
      </div>
    </section>`;
}

export function SubmissionDetail({ w, c, lang, session, go, formList, id, catalogue }) {
  const [submission, setSubmission] = useState(null);
  const [schema, setSchema] = useState(null);
  const [comments, setComments] = useState([]);
  const [versions, setVersions] = useState([]);
  const [changes, setChanges] = useState([]);
  const [trail, setTrail] = useState(null);
  const [error, setError] = useState('');
  const [reload, setReload] = useState(0);
  const [etag, setEtag] = useState(null);
  const [correcting, setCorrecting] = useState(false);
  const reviewer = REVIEWERS.includes(session.role);

  // Another household: nothing of the last one is shown or acted on while it loads.
  useEffect(() => {
    setCorrecting(false);
    setSubmission(null);
    setError('');
  }, [id]);

  useEffect(() => {
    // Answers for a household no longer on screen are dropped: the screen shows, and acts on, one household.
    let live = true;
    (async () => {
      try {
        const path = `/api/v1/submissions/${encodeURIComponent(id)}`;
        const { body, response } = await api.call(path);
        const form = await schemaOf(formList, body.form, body.form_version);
        const comments = (await api.call(`${path}/comments`)).body.items;
        const history = (await api.call(`${path}/versions`)).body.items;
        const changes = history.length > 1
          ? (await api.call(`${path}/diff?from=${history.length - 1}&to=${history.length}`)).body.changes
          : [];
        const trail = reviewer ? (await api.call(`${path}/audit`)).body.items : null;
        if (!live) return;
        setEtag(response.headers.get('etag'));
        setSchema(form);
        setSubmission(body);
        setComments(comments);
        setVersions(history);
        setChanges(changes);
        setTrail(trail);
      } catch (e) {
        if (live) setError(e instanceof api.Offline ? w.network_needed : e instanceof api.NeedsSignIn ? c.signed_out : e.message);
      }
    })();
    return () => { live = false; };
  }, [id, reload]);

  const around = queueAround(id);
  const forward = async () => {
    const next = around.next ?? (around.more ? await nextPage(around.more).catch(() => undefined) : undefined);
    if (next) go(`/console/submissions/${next}`);
  };
  useShortcuts({
    n: forward,
    p: () => around.previous && go(`/console/submissions/${around.previous}`),
  });
  const walk = html`
    <div class="pager">
      <button type="button" onClick=${() => go(around.route)}>${c.back_to_list}</button>
      <button type="button" disabled=${!around.previous} onClick=${() => go(`/console/submissions/${around.previous}`)}>${c.previous}</button>
      <button type="button" disabled=${!around.next && !around.more} onClick=${forward}>${c.next}</button>
    </div>`;
  if (error) return html`${walk}<p class="warning" role="alert">${error}</p>`;
  if (!submission || !schema) return html`${walk}<p class="loading">${w.loading}</p>`;

  return html`
    ${walk}
    <h2>${[submission.data?.household_id, submission.data?.village].filter(Boolean).join(' · ') || submission.id}</h2>
    <p class="detail">${c.submitted_by}: ${submission.submitted_by} · ${c.received_at}: ${new Date(submission.received_at).toLocaleString(lang)} · ${c.version(submission.version)}</p>
    <div class="columns">
      <section aria-labelledby="answers-h" class="main-column">
        <h3 id="answers-h">${c.answers}</h3>
        ${correcting
          ? html`<${Correction} key=${submission.id} c=${c} w=${w} lang=${lang} catalogue=${catalogue} schema=${schema} submission=${submission} etag=${etag}
              onSaved=${() => { setCorrecting(false); setReload((n) => n + 1); }}
              onStale=${() => { setCorrecting(false); setReload((n) => n + 1); }}
              onCancel=${() => setCorrecting(false)} />`
          : html`
            ${reviewer && html`<button type="button" onClick=${() => setCorrecting(true)}>${c.correct}</button>`}
            <${AnswerTables} root=${schema} schema=${schema} data=${submission.data} lang=${lang} w=${w} />`}
        <${Files} c=${c} submission=${submission} />
      </section>
      <aside class="side-column">
        ${reviewer
          ? html`<${Review} key=${submission.id} c=${c} w=${w} id=${submission.id} status=${submission.status} onReviewed=${() => setReload((n) => n + 1)} />`
          : html`<h3>${c.status}: <span class=${`tag ${submission.status}`}>${w.review[submission.status]}</span></h3>`}
        <section aria-labelledby="comments-h">
          <h3 id="comments-h">${w.comments}</h3>
          ${comments.length === 0 ? html`<p>${w.no_comments}</p>` : html`
            <ul class="comments">${comments.map((m) => html`
              <li key=${m.seq}><p>${m.text}</p><p class="detail">${m.author} · ${new Date(m.at).toLocaleString(lang)}</p></li>`)}
            </ul>`}
        </section>
        <section aria-labelledby="versions-h">
          <h3 id="versions-h">${c.versions}</h3>
          <table class="dense">
            <thead><tr><th scope="col">#</th><th scope="col">${c.actor}</th><th scope="col">${c.at}</th></tr></thead>
            <tbody>${versions.map((v) => html`<tr><td class="number">${v.version}</td><td>${v.edited_by}</td><td>${new Date(v.edited_at).toLocaleString(lang)}</td></tr>`)}</tbody>
          </table>
          ${changes.length > 0 && html`
            <table class="dense">
              <caption>${c.diff}: ${c.version(versions.length - 1)} → ${c.version(versions.length)}</caption>
              <thead><tr><th scope="col">${c.change}</th><th scope="col">${c.from}</th><th scope="col">${c.to}</th></tr></thead>
              <tbody>${changes.map((d) => html`
                <tr><th scope="row">${fieldName(null, schema, d.path, lang) || d.path}</th>
                  <td>${d.from === undefined ? c.added : JSON.stringify(d.from)}</td>
                  <td>${d.to === undefined ? c.removed : JSON.stringify(d.to)}</td></tr>`)}
              </tbody>
            </table>`}
        </section>
        ${trail && html`
          <section aria-labelledby="trail-h">
            <h3 id="trail-h">${c.trail}</h3>
            <table class="dense">
              <thead><tr><th scope="col">${c.at}</th><th scope="col">${c.actor}</th><th scope="col">${c.actions}</th></tr></thead>
              <tbody>${trail.map((t) => html`<tr><td>${new Date(t.at).toLocaleString(lang)}</td><td>${t.actor}</td><td>${c.audit_actions[t.action] ?? t.action}</td></tr>`)}</tbody>
            </table>
          </section>`}
      </aside>
    </div>`;
}
