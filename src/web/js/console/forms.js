// Published forms and their versions (admin), each version's schema, and publishing a new version
// from a schema file (its `x-form-id`, `x-form-version` and `title`, as start-up reads them) or
// from an XLSForm workbook (`.xlsx`, `.xls`), which the server converts.

import { html, useState, useEffect } from '../../vendor/htm-preact-standalone.js';
import * as api from '../api.js';
import * as forms from '../forms.js';

/** XLSForm workbooks by file extension, sent as their media type. */
const WORKBOOKS = [
  ['.xlsx', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'],
  ['.xls', 'application/vnd.ms-excel'],
];

export function Forms({ c, w, lang }) {
  const [list, setList] = useState(null);
  const [schema, setSchema] = useState(null);
  const [message, setMessage] = useState('');
  const [error, setError] = useState('');

  const load = () => api.call('/api/v1/forms')
    .then(({ body }) => setList(body.forms))
    .catch((e) => setError(e instanceof api.Offline ? w.network_needed : e.message));
  useEffect(() => { load(); }, []);

  const show = async (id, version) => {
    const { body } = await api.call(`/api/v1/forms/${encodeURIComponent(id)}?version=${encodeURIComponent(version)}`);
    setSchema({ id, version, text: JSON.stringify(body.schema, null, 2) });
  };

  const publish = async (event) => {
    event.preventDefault();
    setMessage('');
    setError('');
    const form = event.currentTarget;
    const file = new FormData(form).get('schema');
    if (!(file instanceof File) || file.size === 0) return setError(c.choose_file);
    const workbook = WORKBOOKS.find(([extension]) => file.name.toLowerCase().endsWith(extension));
    if (workbook) return send(form, { method: 'POST', body: file, headers: { 'content-type': workbook[1] } });
    let parsed;
    try {
      parsed = JSON.parse(await file.text());
    } catch {
      return setError(c.not_json);
    }
    const body = { id: parsed['x-form-id'], version: parsed['x-form-version'], title: parsed.title, schema: parsed };
    if (!body.id || !body.version || !body.title) return setError(c.needs_ids);
    return send(form, { method: 'POST', body: JSON.stringify(body) });
  };

  const send = async (form, request) => {
    try {
      const { status, body } = await api.call('/api/v1/forms', request);
      setMessage(status === 201 ? c.published(body.id, body.version) : c.already_published(body.id, body.version));
      form?.reset?.();
      await load();
      forms.refresh().catch(() => {});
    } catch (e) {
      // A workbook's problems name their sheet, row and column: one per line.
      setError([e.message, ...(e.details ?? []).map((d) => (d.path ? `${d.path}: ${d.message}` : d.message))].join('\n'));
    }
  };

  return html`
    <h2>${c.forms}</h2>
    ${error && html`<p class="warning pre-line" role="alert">${error}</p>`}
    <p class="note" aria-live="polite">${message}</p>
    <div class="columns">
      <div class="main-column">
        ${!list ? html`<p class="loading">${w.loading}</p>` : html`
          <table class="dense">
            <thead><tr><th scope="col">${c.form_id}</th><th scope="col">${c.form_title}</th><th scope="col">${c.version_word}</th>
              <th scope="col">${c.published_at}</th><th scope="col">${c.actions}</th></tr></thead>
            <tbody>${list.flatMap((f) => f.versions.map((v) => html`
              <tr key=${`${f.id}@${v.version}`}>
                <td>${f.id}</td><td>${v.title}</td>
                <td>${v.version}${v.version === f.current_version ? ` (${c.current})` : ''}</td>
                <td>${new Date(v.published_at).toLocaleString(lang)}</td>
                <td><button type="button" class="quiet" onClick=${() => show(f.id, v.version)}
                  aria-label=${`${c.view_schema} ${f.id} ${v.version}`}>${c.view_schema}</button></td>
              </tr>`))}
            </tbody>
          </table>`}
        ${schema && html`
          <section aria-labelledby="schema-h">
            <h3 id="schema-h">${schema.id} · ${c.version_word} ${schema.version}</h3>
            <pre class="schema">${schema.text}</pre>
          </section>`}
      </div>
      <aside class="side-column">
        <form class="card user-form" onSubmit=${publish}>
          <h3>${c.publish}</h3>
          <p class="detail">${c.publish_hint}</p>
          <label for="schema-file">${c.schema_file}</label>
          <input id="schema-file" name="schema" type="file" accept=${['.json', 'application/json', ...WORKBOOKS.flat()].join(',')} />
          <button type="submit" class="primary">${c.publish_button}</button>
        </form>
      </aside>
    </div>`;
}
