// The home screen: forms to fill, unfinished questionnaires, what needs attention, and the uploads.

import { html, useState, useEffect, useRef } from '../../vendor/htm-preact-standalone.js';
import * as api from '../api.js';
import * as forms from '../forms.js';
import * as outbox from '../outbox.js';
import * as sending from '../uploads.js';
import * as store from '../store.js';
import * as drafts from '../drafts.js';

async function attention(username) {
  const found = [];
  for (const form of await store.forms()) {
    const { body } = await api.call(`/api/v1/forms/${encodeURIComponent(form.id)}/submissions?status=has_issues,rejected&limit=100`);
    found.push(...body.items.map((s) => ({ id: s.id, form: s.form, status: s.status, received_at: s.received_at, summary: drafts.summaryOf(s.data) })));
  }
  await store.setValue(`attention:${username}`, found);
  return found;
}

/** What a worker may type to find a household: its number, a person's name, an ID's last digits. */
function matches(household, query) {
  const wanted = query.trim().toUpperCase();
  if (!wanted) return false;
  const people = Array.isArray(household.members) ? household.members : [];
  return String(household.household_id ?? '').includes(wanted)
    || people.some((p) => String(p.name ?? '').includes(query.trim()) || String(p.id_number ?? '').toUpperCase().endsWith(wanted));
}

/** How a registered household is recognised in a list: number, village, its people. */
function registeredSummary(household) {
  const people = (Array.isArray(household.members) ? household.members : []).map((p) => p.name).filter(Boolean);
  return [household.household_id, household.village, people.join('、')].filter(Boolean).join(' · ');
}

/**
 * The register's households of the worker's places, kept on the phone: found by number, name or
 * the last digits of an ID, and opened as a questionnaire filled with what the register knows.
 */
function Registered({ form, w, onPick, loaded }) {
  const [households, setHouseholds] = useState([]);
  const [query, setQuery] = useState('');
  // Read again whenever the home screen reloaded what the phone keeps (a sync brought the roster).
  useEffect(() => {
    store.roster(form.id).then(setHouseholds);
  }, [form.id, loaded]);
  if (households.length === 0) return null;
  const id = `roster-${form.id}`;
  const found = query.trim() ? households.filter((h) => matches(h, query)).slice(0, 20) : [];
  return html`
    <div class="roster">
      <label for=${id}>${w.find_household(households.length)}</label>
      <input id=${id} type="search" autocomplete="off" value=${query} onInput=${(e) => setQuery(e.currentTarget.value)} />
      ${query.trim() && found.length === 0 && html`<p class="note">${w.no_household_found}</p>`}
      <ul class="list">${found.map((household) => html`
        <li key=${household.household_id}>
          <button type="button" class="big" onClick=${() => onPick(household)}>${registeredSummary(household)}</button>
        </li>`)}</ul>
    </div>`;
}

/** Each file of a questionnaire in the upload list: waiting, how far along, sent, or refused and why. */
function FileStates({ files, w }) {
  if (files.length === 0) return null;
  const state = (file) => {
    if (file.state === 'sent') return w.file_sent;
    if (file.state === 'refused') return `${w.file_refused}${file.error?.message ?? ''}`;
    const percent = sending.percentOf(file);
    return percent === undefined ? w.file_waiting : w.file_progress(percent);
  };
  return html`<ul class="files">${files.map((file) => html`
    <li key=${file.name}><span class="file-name">${file.name}</span> <span class=${`tag ${file.state}`}>${state(file)}</span></li>`)}</ul>`;
}

export function Home({ w, lang, session, go, waiting, onSignOut }) {
  const [formList, setFormList] = useState([]);
  const [draftList, setDraftList] = useState([]);
  const [needs, setNeeds] = useState([]);
  const [uploads, setUploads] = useState([]);
  const [files, setFiles] = useState([]);
  const [, setTick] = useState(0);
  const [settings, setSettings] = useState({});

  const [loaded, setLoaded] = useState(0);

  const load = async () => {
    setFormList(await store.forms());
    setLoaded((n) => n + 1);
    setDraftList((await store.drafts()).filter((d) => d.username === session.username)
      .sort((a, b) => b.updated_at.localeCompare(a.updated_at)));
    setUploads((await outbox.items()).filter((i) => i.username === session.username).reverse().slice(0, 50));
    setFiles(await store.files());
    setNeeds((await store.getValue(`attention:${session.username}`)) ?? []);
    setSettings((await store.getValue('settings')) ?? {});
  };

  useEffect(() => {
    load();
    (async () => {
      // The forms first: what needs attention is asked of each of them.
      await forms.refresh().catch(() => {});
      await load();
      await attention(session.username).then(setNeeds).catch(() => {});
    })();
    const unsubscribe = outbox.subscribe(load);
    // Progress is redrawn from memory; a file sent or refused is read again.
    const unsubscribeFiles = sending.subscribe((what) => (what === 'state' ? load() : setTick((t) => t + 1)));
    return () => {
      unsubscribe();
      unsubscribeFiles();
    };
  }, [session.username]);

  // A double tap starts one questionnaire, not two.
  const starting = useRef(false);
  const begin = async (form, registered) => {
    if (starting.current) return;
    starting.current = true;
    const draft = await drafts.start(form, session, { registered });
    go(`/fill/${draft.id}`);
  };

  const remove = async (draft) => {
    if (!confirm(w.confirm_delete_draft)) return;
    await store.deleteDraft(draft.id);
    load();
  };

  const toggle = async (name) => {
    const next = { ...settings, [name]: !settings[name] };
    await store.setValue('settings', next);
    setSettings(next);
  };

  const uploadState = (item) => ({
    queued: w.queued, retrying: w.retrying, sent: w.sent, conflict: w.conflict, returned: w.returned,
  })[item.state];

  return html`
    <section aria-labelledby="forms-h">
      <h2 id="forms-h">${w.forms}</h2>
      ${formList.length === 0 && html`<p>${w.no_forms}</p>`}
      <ul class="list">
        ${formList.map((form) => html`
          <li key=${form.id}>
            <button type="button" class="primary big" onClick=${() => begin(form)}>${form.title}</button>
            <${Registered} form=${form} w=${w} loaded=${loaded} onPick=${(household) => begin(form, household)} />
          </li>`)}
      </ul>
    </section>
    ${draftList.length > 0 && html`
      <section aria-labelledby="drafts-h">
        <h2 id="drafts-h">${w.drafts}</h2>
        <ul class="list">
          ${draftList.map((draft) => html`
            <li key=${draft.id} class="row">
              <span>${drafts.summaryOf(draft.answers) || new Date(draft.updated_at).toLocaleString(lang)}
                ${(draft.server_problems?.length > 0 || draft.server_refusal) && html` <strong class="tag bad">${w.returned}</strong>`}</span>
              <span class="actions">
                <button type="button" onClick=${() => go(`/fill/${draft.id}`)}>${w.continue_draft}</button>
                <button type="button" class="quiet" onClick=${() => remove(draft)}>${w.delete_draft}</button>
              </span>
            </li>`)}
        </ul>
      </section>`}
    <section aria-labelledby="attention-h">
      <h2 id="attention-h">${w.attention}</h2>
      ${needs.length === 0 && html`<p>${w.nothing_needs_attention}</p>`}
      <ul class="list">
        ${needs.map((s) => html`
          <li key=${s.id}>
            <a class="row" href=${`/submissions/${s.id}`} onClick=${(e) => { e.preventDefault(); go(`/submissions/${s.id}`); }}>
              <span>${s.summary || s.id.slice(0, 8)}</span>
              <span class=${`tag ${s.status}`}>${w.review[s.status] ?? s.status}</span>
            </a>
          </li>`)}
      </ul>
    </section>
    ${uploads.length > 0 && html`
      <section aria-labelledby="outbox-h">
        <h2 id="outbox-h">${w.outbox}</h2>
        <ul class="list">
          ${uploads.map((item) => html`
            <li key=${item.id} class="row">
              <span>${item.summary || item.id.slice(0, 8)}</span>
              <span class=${`tag ${item.state}`}>${uploadState(item)}</span>
              ${item.error && item.state !== 'returned' && html`<span class="detail">${w.refusals[item.error.code] ?? item.error.message}</span>`}
              ${item.state !== 'returned' && html`<${FileStates} files=${files.filter((f) => f.owner === item.id)} w=${w} />`}
            </li>`)}
        </ul>
      </section>`}
    <section aria-labelledby="settings-h" class="settings">
      <h2 id="settings-h" class="visually-hidden">${w.settings}</h2>
      <p>${w.signed_in_as(session.display_name || session.username)}</p>
      <label class="check"><input type="checkbox" checked=${!!settings.training} onChange=${() => toggle('training')} /> ${w.training_mode}</label>
      <label class="check"><input type="checkbox" checked=${!!settings.location} onChange=${() => toggle('location')} /> ${w.record_location}</label>
      ${session.expired
        ? html`<button type="button" onClick=${() => go('/login')}>${w.sign_in}</button>`
        : html`<button type="button" class="quiet"
            onClick=${() => (waiting === 0 || confirm(w.confirm_sign_out(waiting))) && onSignOut()}>${w.sign_out}</button>`}
    </section>`;
}
