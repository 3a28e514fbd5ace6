// Submissions in the reader's places: a table with filters kept in the URL, a page at a time.

import { html, useState, useEffect } from '../../vendor/htm-preact-standalone.js';
import * as api from '../api.js';
import { titleOf, placeField } from '../schema/walk.js';
import { questions, shown } from '../answers.js';
import { dayStart, dayAfter } from '../drafts.js';

const FILTERS = ['township', 'status', 'since', 'until', 'submitted_by', 'q'];
const STATES = ['received', 'edited', 'approved', 'has_issues', 'rejected'];

/** The API's query for the console's: dates become instants, the rest is passed on. */
function apiQuery(params) {
  const query = new URLSearchParams();
  for (const name of FILTERS) {
    const value = params.get(name);
    if (!value) continue;
    if (name === 'since') query.set('since', dayStart(value));
    else if (name === 'until') query.set('until', dayAfter(value));
    else query.set(name, value);
  }
  if (params.get('cursor')) query.set('cursor', params.get('cursor'));
  query.set('limit', '50');
  return query;
}

export function Submissions({ w, c, lang, session, go, route, params, form, schema }) {
  const [page, setPage] = useState(null);
  const [error, setError] = useState('');
  const [workers, setWorkers] = useState([]);

  useEffect(() => {
    if (!form) return;
    let live = true;
    setPage(null);
    setError('');
    const query = apiQuery(params);
    api.call(`/api/v1/forms/${encodeURIComponent(form.id)}/submissions?${query}`)
      .then(({ body }) => {
        if (!live) return;
        setPage(body);
        // The detail screen's 上一份/下一份 walk this list, page after page.
        query.delete('cursor');
        sessionStorage.setItem('console-queue', JSON.stringify({
          route,
          api: `/api/v1/forms/${encodeURIComponent(form.id)}/submissions?${query}`,
          ids: body.items.map((s) => s.id),
          next_cursor: body.next_cursor,
        }));
      })
      .catch((e) => live && setError(e instanceof api.Offline ? w.network_needed : e.message));
    return () => { live = false; };
  }, [route, form?.id]);

  // The field workers for the filter: one count per form, not per page.
  useEffect(() => {
    if (!form) return;
    api.call(`/api/v1/forms/${encodeURIComponent(form.id)}/progress?by=submitted_by`)
      .then(({ body }) => setWorkers(body.groups))
      .catch(() => setWorkers([]));
  }, [form?.id]);

  if (!form || !schema) return html`<p class="loading">${w.loading}</p>`;
  const places = placeField(schema).places.filter((p) => !session.scope || session.scope.includes(p));
  const columns = questions(schema, schema).filter((q) => !['group', 'object', 'consent'].includes(q.kind));
  const groups = questions(schema, schema).filter((q) => q.kind === 'group');

  const apply = (event) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    const next = new URLSearchParams();
    if (params.get('form')) next.set('form', params.get('form'));
    for (const name of FILTERS) {
      const value = String(data.get(name) ?? '').trim();
      if (value) next.set(name, value);
    }
    go(`/console/submissions${next.size ? `?${next}` : ''}`);
  };
  const withCursor = (cursor) => {
    const next = new URLSearchParams(params);
    if (cursor) next.set('cursor', cursor);
    else next.delete('cursor');
    return `/console/submissions?${next}`;
  };

  return html`
    <h2>${c.submissions} · ${form.title}</h2>
    <form class="filters" onSubmit=${apply} aria-label=${c.filters}>
      <div><label for="f-township">${c.township}</label>
        <select id="f-township" name="township">
          <option value="">${c.any}</option>
          ${places.map((p) => html`<option value=${p} selected=${params.get('township') === p}>${p}</option>`)}
        </select></div>
      <div><label for="f-status">${c.status}</label>
        <select id="f-status" name="status">
          <option value="">${c.any}</option>
          <option value="received,edited" selected=${params.get('status') === 'received,edited'}>${c.review_queue}</option>
          ${STATES.map((s) => html`<option value=${s} selected=${params.get('status') === s}>${w.review[s]}</option>`)}
        </select></div>
      <div><label for="f-since">${c.since}</label><input id="f-since" type="date" name="since" value=${params.get('since') ?? ''} /></div>
      <div><label for="f-until">${c.until}</label><input id="f-until" type="date" name="until" value=${params.get('until') ?? ''} /></div>
      <div><label for="f-submitted_by">${c.field_worker}</label>
        <select id="f-submitted_by" name="submitted_by">
          <option value="">${c.any}</option>
          ${workers.map((g) => html`<option value=${g.key} selected=${params.get('submitted_by') === g.key}>${g.display_name ? `${g.display_name} (${g.key})` : g.key}</option>`)}
        </select></div>
      <div><label for="f-q">${c.search}</label><input id="f-q" type="search" name="q" value=${params.get('q') ?? ''} autocomplete="off" /></div>
      <div class="filter-actions">
        <button type="submit" class="primary">${c.apply}</button>
        <button type="button" class="quiet" onClick=${() => go('/console/submissions')}>${c.clear}</button>
      </div>
    </form>
    ${error && html`<p class="warning" role="alert">${error}</p>`}
    ${!page && !error && html`<p class="loading">${w.loading}</p>`}
    ${page && page.items.length === 0 && html`<p>${c.none_found}</p>`}
    ${page && page.items.length > 0 && html`
      <div class="wide">
        <table class="dense">
          <thead><tr>
            ${columns.map((q) => html`<th scope="col">${titleOf(q.schema, q.name, lang)}</th>`)}
            ${groups.map((q) => html`<th scope="col" class="number">${titleOf(q.schema, q.name, lang)}</th>`)}
            <th scope="col">${c.submitted_by}</th><th scope="col">${c.received_at}</th><th scope="col">${c.status}</th>
          </tr></thead>
          <tbody>${page.items.map((s) => html`
            <tr>
              ${columns.map((q, i) => html`<td>${i === 0
                ? html`<a href=${`/console/submissions/${s.id}`} onClick=${(e) => { e.preventDefault(); go(`/console/submissions/${s.id}`); }}>${shown(schema, q.schema, s.data?.[q.name], lang, w) || c.open}</a>`
                : shown(schema, q.schema, s.data?.[q.name], lang, w)}</td>`)}
              ${groups.map((q) => html`<td class="number">${Array.isArray(s.data?.[q.name]) ? s.data[q.name].length : ''}</td>`)}
              <td>${s.submitted_by}</td>
              <td class="when">${new Date(s.received_at).toLocaleString(lang)}</td>
              <td><span class=${`tag ${s.status}`}>${w.review[s.status] ?? s.status}</span></td>
            </tr>`)}
          </tbody>
        </table>
      </div>
      <div class="pager">
        ${params.get('cursor') && html`<button type="button" onClick=${() => go(withCursor(null))}>${c.first_page}</button>`}
        ${page.next_cursor && html`<button type="button" onClick=${() => go(withCursor(page.next_cursor))}>${c.next_page}</button>`}
      </div>`}`;
}
