// Filling a questionnaire: every change saved at once, the phone's validation before anything is
// queued, mistakes shown next to their questions and listed at the top.

import { html, useState, useEffect, useRef } from '../../vendor/htm-preact-standalone.js';
import { ObjectFields, questionId } from '../questions.js';
import { settled as settledFiles } from '../attachments.js';
import { problems as findProblems } from '../schema/validate.js';
import { describe, message } from '../schema/messages.js';
import { prune, idRules, deref, isHidden, fileAnswers } from '../schema/walk.js';
import * as pointers from '../schema/pointer.js';
import { calculated } from '../schema/calculate.js';
import { residentId } from '../schema/resident-id.js';
import * as store from '../store.js';
import * as forms from '../forms.js';
import * as outbox from '../outbox.js';
import * as drafts from '../drafts.js';

const APP_VERSION = document.querySelector('meta[name="app-version"]')?.content ?? 'dev';

/** The `x-rules` of the object holding `pointer`, when `pointer` is an ID number they read. */
function derived(root, answers, pointer) {
  const parts = pointers.segments(pointer);
  let schema = deref(root, root);
  const objectPath = parts.slice(0, -1);
  for (const part of objectPath) {
    schema = deref(root, /^\d+$/.test(part) && schema.items ? schema.items : schema.properties?.[part] ?? {});
  }
  const base = objectPath.map((p) => `/${pointers.escape(p)}`).join('');
  const field = `/${pointers.escape(parts[parts.length - 1])}`;
  const read = residentId(pointers.get(answers, pointer) ?? '');
  if (!read.ok) return answers;
  let next = answers;
  for (const rule of idRules(root, schema)) {
    if (rule.id !== field) continue;
    if (rule.rule === 'resident-id-birth-date') next = pointers.set(next, base + rule.birth_date, read.birthDate);
    if (rule.rule === 'resident-id-gender') next = pointers.set(next, base + rule.gender, read.male ? rule.male : rule.female);
  }
  return next;
}

async function position() {
  if (!navigator.geolocation) return undefined;
  return new Promise((resolve) => navigator.geolocation.getCurrentPosition(
    (p) => resolve({ lat: p.coords.latitude, lon: p.coords.longitude, accuracy_m: Math.round(p.coords.accuracy) }),
    () => resolve(undefined),
    { enableHighAccuracy: true, timeout: 15000, maximumAge: 300000 },
  ));
}

export function Fill({ w, lang, session, catalogue, go, draftId, onQueued }) {
  const [draft, setDraft] = useState(null);
  const [form, setForm] = useState(null);
  const [schema, setSchema] = useState(null);
  const [shown, setShown] = useState([]);
  const [saved, setSaved] = useState(false);
  const [trouble, setTrouble] = useState('');
  const [settings, setSettings] = useState({});
  const writes = useRef(Promise.resolve());
  const latest = useRef(null);
  const submitting = useRef(false);

  // Every change goes through here: the latest draft is kept in a ref, so two changes before a
  // re-render both count, and the writes go to IndexedDB in order, each its own transaction.
  const update = (change) => {
    const next = { ...change(latest.current), updated_at: new Date().toISOString() };
    latest.current = next;
    setDraft(next);
    setSaved(false);
    // A failed write (the phone's storage full) is shown, and does not stop the writes after it.
    writes.current = writes.current
      .then(() => store.saveDraft(next))
      .then(() => { setSaved(true); setTrouble(''); }, () => setTrouble(w.not_saved));
  };

  useEffect(() => {
    let open = true;
    (async () => {
      const found = await store.draft(draftId);
      // Another worker's questionnaire (a tab left open when the phone changed hands) is not shown.
      if (!found || found.username !== session.username) return go('/', { replace: true });
      setForm(await store.form(found.form));
      setSchema(await forms.schemaOf(found.form, found.form_version));
      latest.current = found;
      setDraft(found);
      setShown(found.server_problems ?? []);
      const kept = (await store.getValue('settings')) ?? {};
      setSettings(kept);
      if (kept.location && !found.location) {
        const location = await position();
        // Only while the questionnaire is still open here: once submitted, a late fix writes nothing.
        if (location && open && latest.current?.id === found.id) update((current) => ({ ...current, location }));
      }
    })();
    return () => { open = false; };
  }, [draftId]);

  if (!draft || !schema) return html`<p class="loading">${w.loading}</p>`;

  const onChange = (pointer, value) => update((current) => ({
    ...current,
    answers: calculated(schema, derived(schema, pointers.set(current.answers, pointer, value), pointer)),
  }));

  // Problems of questions the answers hide (a reason for not working, before saying whether one
  // works) are not shown: the question they hang on is, and answering it settles them.
  const visible = shown.filter((p) => !isHidden(schema, draft.answers, p.path));
  const listed = visible.length > 0 ? visible : shown;
  const problemsAt = (pointer) => listed.filter((p) => p.path === pointer).map((p) => (p.key ? describe(catalogue, p.key, p.params) : p.message));

  const focus = (pointer) => {
    // The question itself, or the nearest one above it that is on screen.
    for (let at = pointer; ; at = at.slice(0, at.lastIndexOf('/'))) {
      const element = document.getElementById(questionId(at));
      if (element) {
        element.scrollIntoView({ block: 'center' });
        element.focus();
        return;
      }
      if (!at) return;
    }
  };

  const submit = async () => {
    // A second tap while the first is being queued does nothing.
    if (submitting.current) return;
    submitting.current = true;
    try {
      await queue();
    } catch {
      setTrouble(w.not_queued);
    } finally {
      submitting.current = false;
    }
  };

  const queue = async () => {
    // A photo tapped in just before 提交 is still being made: its answer counts.
    await settledFiles();
    const current = latest.current;
    const data = prune(schema, schema, current.answers) ?? {};
    const found = findProblems(schema, data);
    const outside = found.length === 0 ? drafts.outsideScope(schema, data, session.scope) : undefined;
    if (outside) found.push({ path: outside, message: w.refusals.out_of_scope });
    // An answer naming a file this phone does not have could never be uploaded.
    const files = fileAnswers(schema, schema, data);
    for (const file of files) {
      if (!(await store.file(current.id, file.name))?.blob) found.push({ path: file.path, message: w.file_not_on_phone });
    }
    setShown(found);
    if (found.length > 0) {
      const first = found.find((p) => !isHidden(schema, current.answers, p.path)) ?? found[0];
      requestAnimationFrame(() => focus(first.path));
      return;
    }
    await writes.current;
    const location = current.location ?? current.meta?.location;
    const replaces = current.replaces ?? current.meta?.replaces;
    const meta = {
      device_id: await deviceId(),
      app_version: APP_VERSION,
      started_at: current.started_at ?? current.meta?.started_at,
      completed_at: drafts.now(),
      ...(location ? { location } : {}),
      ...(settings.training ? { test: true } : {}),
      ...(replaces ? { replaces } : {}),
    };
    const envelope = { id: current.id, form_version: current.form_version, data, meta };
    await outbox.add({ envelope, form: current.form, username: session.username, summary: drafts.summaryOf(data), files: files.map((f) => f.name) }, current.id);
    onQueued();
    go(`/done/${current.id}`, { replace: true });
  };

  return html`
    ${settings.training && html`<p class="banner">${w.training_banner}</p>`}
    <h2>${form?.title}</h2>
    ${trouble && html`<p class="warning" role="alert">${trouble}</p>`}
    ${draft.server_refusal && html`
      <p class="warning">${w.server_refused}${w.refusals[draft.server_refusal.code] ?? draft.server_refusal.message}</p>`}
    ${listed.length > 0 && html`
      <div class="problems" role="alert">
        <h3>${w.problems(listed.length)}</h3>
        <ul>${listed.map((p) => html`<li><button type="button" class="link" onClick=${() => focus(p.path)}>${p.key ? message(catalogue, schema, p, lang) : p.message}</button></li>`)}</ul>
      </div>`}
    <form class="questionnaire" onSubmit=${(e) => { e.preventDefault(); submit(); }} novalidate>
      <${ObjectFields} root=${schema} schema=${schema} pointer="" value=${draft.answers} owner=${draft.id}
        onChange=${onChange} lang=${lang} w=${w} problemsAt=${problemsAt} />
      <div class="actions-bar">
        <span class="saved" aria-live="polite">${saved ? w.saved : ''}</span>
        <button type="submit" class="primary">${w.submit}</button>
      </div>
    </form>`;
}

async function deviceId() {
  let id = await store.getValue('device_id');
  if (!id) {
    id = drafts.newId();
    await store.setValue('device_id', id);
  }
  return id;
}
