// The audit log (admin): who did what, when, to what; filtered by time, person, action and target,
// a page at a time, filters kept in the URL.

import { html, useState, useEffect } from '../../vendor/htm-preact-standalone.js';
import * as api from '../api.js';
import { dayStart, dayAfter } from '../drafts.js';

const FILTERS = ['since', 'until', 'actor', 'action', 'target'];

export function AuditLog({ c, w, lang, go, route, params }) {
  const [page, setPage] = useState(null);
  const [error, setError] = useState('');

  useEffect(() => {
    const query = new URLSearchParams({ limit: '100' });
    for (const name of FILTERS) {
      const value = params.get(name);
      if (!value) continue;
      if (name === 'since') query.set(name, dayStart(value));
      else if (name === 'until') query.set(name, dayAfter(value));
      else query.set(name, value);
    }
    if (params.get('cursor')) query.set('cursor', params.get('cursor'));
    setPage(null);
    setError('');
    api.call(`/api/v1/audit?${query}`)
      .then(({ body }) => setPage(body))
      .catch((e) => setError(e instanceof api.Offline ? w.network_needed : e.message));
  }, [route]);

  const apply = (event) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    const next = new URLSearchParams();
    for (const name of FILTERS) {
      const value = String(data.get(name) ?? '').trim();
      if (value) next.set(name, value);
    }
    go(`/console/audit${next.size ? `?${next}` : ''}`);
  };
  const more = () => {
    const next = new URLSearchParams(params);
    next.set('cursor', page.next_cursor);
    go(`/console/audit?${next}`);
  };

  return html`
    <h2>${c.audit}</h2>
    <form class="filters" onSubmit=${apply} aria-label=${c.filters}>
      <div><label for="f-since">${c.day_from}</label><input id="f-since" type="date" name="since" value=${params.get('since') ?? ''} /></div>
      <div><label for="f-until">${c.day_to}</label><input id="f-until" type="date" name="until" value=${params.get('until') ?? ''} /></div>
      <div><label for="f-actor">${c.actor}</label><input id="f-actor" name="actor" value=${params.get('actor') ?? ''} autocomplete="off" /></div>
      <div><label for="f-action">${c.actions}</label>
        <select id="f-action" name="action">
          <option value="">${c.any}</option>
          ${Object.entries(c.audit_actions).map(([code, label]) => html`<option value=${code} selected=${params.get('action') === code}>${label}</option>`)}
        </select></div>
      <div><label for="f-target">${c.target}</label><input id="f-target" name="target" value=${params.get('target') ?? ''} placeholder="submission:… user:…" autocomplete="off" /></div>
      <div class="filter-actions">
        <button type="submit" class="primary">${c.apply}</button>
        <button type="button" class="quiet" onClick=${() => go('/console/audit')}>${c.clear}</button>
      </div>
    </form>
    ${error && html`<p class="warning" role="alert">${error}</p>`}
    ${!page && !error && html`<p class="loading">${w.loading}</p>`}
    ${page && html`
      <div class="wide">
        <table class="dense">
          <thead><tr><th scope="col">#</th><th scope="col">${c.at}</th><th scope="col">${c.actor}</th>
            <th scope="col">${c.actions}</th><th scope="col">${c.target}</th><th scope="col">${c.request}</th></tr></thead>
          <tbody>${page.items.map((e) => html`
            <tr key=${e.seq}><td class="number">${e.seq}</td><td class="when">${new Date(e.at).toLocaleString(lang)}</td><td>${e.actor}</td>
              <td>${c.audit_actions[e.action] ?? e.action}</td><td>${e.target}</td><td class="detail">${e.request_id ?? ''}</td></tr>`)}
          </tbody>
        </table>
      </div>
      <div class="pager">
        ${params.get('cursor') && html`<button type="button" onClick=${() => { const n = new URLSearchParams(params); n.delete('cursor'); go(`/console/audit?${n}`); }}>${c.first_page}</button>`}
        ${page.next_cursor && html`<button type="button" onClick=${more}>${c.next_page}</button>`}
      </div>`}`;
}
