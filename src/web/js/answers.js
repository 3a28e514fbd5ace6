// Answers for reading, as people read them: under their question titles, choices by their labels,
// yes/no in words, repeated groups as tables (one row per labourer).

import { html } from '../vendor/htm-preact-standalone.js';
import { deref, kindOf, titleOf, choicesOf, itemLabel } from './schema/walk.js';

/** One answer as text: a choice's label, several joined, 是/否, or the value itself. */
export function shown(root, raw, value, lang, w) {
  if (value === undefined || value === null) return '';
  const schema = deref(root, raw);
  const labels = new Map(choicesOf(root, schema, lang).map((c) => [c.value, c.label]));
  if (Array.isArray(value)) return value.map((v) => labels.get(v) ?? String(v)).join('、');
  if (typeof value === 'boolean') return value ? w.yes : w.no;
  if (typeof value === 'object') return JSON.stringify(value);
  return labels.get(value) ?? String(value);
}

/** The questions of an object schema in their order, with their kinds. */
export function questions(root, raw) {
  const schema = deref(root, raw);
  return Object.entries(schema.properties ?? {})
    .filter(([, child]) => child !== false)
    .map(([name, child]) => ({ name, schema: deref(root, child), kind: kindOf(root, child) }));
}

/** The field app's view: a definition list, groups nested. */
export function AnswerList({ root, schema, data, lang, w }) {
  return html`<dl class="answers">${questions(root, schema).map((q) => {
    const value = data?.[q.name];
    if (value === undefined) return null;
    const title = titleOf(q.schema, q.name, lang);
    if (q.kind === 'group') {
      return value.map((item, i) => html`
        <dt class="item">${itemLabel(q.schema, title, i + 1, lang)}</dt>
        <dd><${AnswerList} root=${root} schema=${q.schema.items} data=${item} lang=${lang} w=${w} /></dd>`);
    }
    if (q.kind === 'object') {
      return html`<dt>${title}</dt><dd><${AnswerList} root=${root} schema=${q.schema} data=${value} lang=${lang} w=${w} /></dd>`;
    }
    return html`<dt>${title}</dt><dd>${shown(root, q.schema, value, lang, w)}</dd>`;
  })}</dl>`;
}

/** The console's view: a table of the questions, and one table per repeated group. */
export function AnswerTables({ root, schema, data, lang, w }) {
  const all = questions(root, schema);
  const plain = all.filter((q) => q.kind !== 'group');
  const groups = all.filter((q) => q.kind === 'group' && Array.isArray(data?.[q.name]));
  return html`
    <table class="answers-table">
      <tbody>${plain.map((q) => html`
        <tr><th scope="row">${titleOf(q.schema, q.name, lang)}</th><td>${shown(root, q.schema, data?.[q.name], lang, w)}</td></tr>`)}
      </tbody>
    </table>
    ${groups.map((q) => {
      const title = titleOf(q.schema, q.name, lang);
      const items = data[q.name];
      // One column per item (a household has a few labourers, a labourer many answers).
      return html`
        <div class="wide">
          <table class="dense">
            <caption>${title}</caption>
            <thead><tr><td></td>${items.map((_, i) => html`<th scope="col">${itemLabel(q.schema, title, i + 1, lang)}</th>`)}</tr></thead>
            <tbody>${questions(root, q.schema.items).map((c) => html`
              <tr><th scope="row">${titleOf(c.schema, c.name, lang)}</th>
                ${items.map((item) => html`<td>${shown(root, c.schema, item?.[c.name], lang, w)}</td>`)}</tr>`)}
            </tbody>
          </table>
        </div>`;
    })}`;
}
