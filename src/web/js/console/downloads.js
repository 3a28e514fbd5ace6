// The cleaned dataset and single tables, with the export's options, each explained.

import { html, useState } from '../../vendor/htm-preact-standalone.js';
import * as api from '../api.js';
import { questions } from '../answers.js';
import { save, size } from './save.js';

export function Downloads({ c, w, form, schema }) {
  const [options, setOptions] = useState({ labels: true, split: false, bom: true, approved: false, raw: false });
  const [table, setTable] = useState('main');
  const [format, setFormat] = useState('csv');
  const [state, setState] = useState({ busy: false, text: '' });

  if (!form || !schema) return html`<p class="loading">${w.loading}</p>`;
  const tables = ['main', ...questions(schema, schema).filter((q) => q.kind === 'group').map((q) => q.name)];

  const query = () => {
    const q = new URLSearchParams();
    q.set('labels', String(options.labels));
    if (options.split) q.set('multiple', 'split');
    q.set('bom', String(options.bom));
    if (options.approved) q.set('status', 'approved');
    if (options.raw) q.set('raw', 'true');
    return q;
  };
  const run = async (path) => {
    setState({ busy: true, text: c.receiving(0) });
    try {
      const file = await save(path, (bytes) => setState({ busy: true, text: c.receiving(size(bytes)) }));
      setState({ busy: false, text: c.saved_file(file.name, size(file.size)) });
    } catch (e) {
      setState({ busy: false, text: e instanceof api.Offline ? w.network_needed : e.status === 403 ? c.forbidden : e.message });
    }
  };
  const base = `/api/v1/forms/${encodeURIComponent(form.id)}`;
  const flag = (name) => html`
    <label class="check option"><input type="checkbox" checked=${options[name]}
      onChange=${(e) => setOptions({ ...options, [name]: e.currentTarget.checked })} />
      <span><strong>${c.options[name][0]}</strong><br /><span class="detail">${c.options[name][1]}</span></span></label>`;

  return html`
    <h2>${c.downloads} · ${form.title}</h2>
    <fieldset class="options">
      <legend>${c.options_title}</legend>
      ${flag('labels')}${flag('split')}${flag('bom')}${flag('approved')}${flag('raw')}
    </fieldset>
    <section class="card">
      <h3>${c.whole_dataset}</h3>
      <p class="detail">${c.whole_dataset_hint}</p>
      <button type="button" class="primary" disabled=${state.busy} onClick=${() => run(`${base}/export.zip?${query()}`)}>${c.download_data}</button>
    </section>
    <section class="card">
      <h3>${c.one_table}</h3>
      <label for="dl-table">${c.table}</label>
      <select id="dl-table" onChange=${(e) => setTable(e.currentTarget.value)}>
        ${tables.map((t) => html`<option value=${t} selected=${t === table}>${t}</option>`)}
      </select>
      <label for="dl-format">${c.format}</label>
      <select id="dl-format" onChange=${(e) => setFormat(e.currentTarget.value)}>
        <option value="csv" selected=${format === 'csv'}>CSV</option>
        <option value="ndjson" selected=${format === 'ndjson'}>NDJSON</option>
      </select>
      <button type="button" disabled=${state.busy} onClick=${() => run(`${base}/export/${table}.${format}?${query()}`)}>${c.download_table}</button>
    </section>
    <p class="note" aria-live="polite">${state.text}</p>`;
}
