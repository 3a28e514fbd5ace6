// Progress and the county's figures: the form's declared indicators by township (exactly the
// server's numbers), and submissions by day, field worker and review state.

import { html, useState, useEffect } from '../../vendor/htm-preact-standalone.js';
import * as api from '../api.js';
import { deref, choicesOf, titleOf, placeField } from '../schema/walk.js';
import { BarChart, LineChart } from './chart.js';

/** The schema of `table`'s rows: the root for `main`, else the items of that repeated group. */
function rowSchema(schema, table) {
  return table === 'main' ? schema : deref(schema, deref(schema, schema.properties?.[table] ?? {}).items ?? {});
}

function Indicator({ c, lang, schema, indicator, scopeField, base }) {
  const [figures, setFigures] = useState(null);
  useEffect(() => {
    api.call(`${base}/indicators?table=${encodeURIComponent(indicator.table)}&by=${encodeURIComponent(scopeField)}`)
      .then(({ body }) => setFigures(body))
      .catch(() => setFigures(undefined));
  }, [indicator.id]);
  if (!figures) return null;
  const title = lang === 'en' ? indicator['x-title-en'] ?? indicator.title : indicator.title;
  const column = rowSchema(schema, indicator.table).properties?.[indicator.column] ?? {};
  const choices = choicesOf(schema, column, lang);
  const places = figures.groups.map((g) => g[scopeField] || c.no_place);
  const id = indicator.id.replace(/[^a-z0-9_-]/gi, '_');
  return html`
    <${BarChart} id=${`${id}-by-choice`} c=${c} stacked=${true} unit="count" axis=${c.people_axis}
      title=${c.by_township(titleOf(column, indicator.column, lang))} groups=${places}
      series=${choices.map((choice) => ({ name: choice.label, values: figures.groups.map((g) => g[`${indicator.column}=${choice.value}`] ?? 0) }))} />
    <${BarChart} id=${`${id}-rate`} c=${c} unit="%" axis=${`${title} (%)`}
      title=${c.by_township(title)} groups=${[...places, c.total]}
      series=${[{ name: title, values: [...figures.groups.map((g) => g[indicator.id] ?? 0), figures.total[indicator.id] ?? 0] }]} />`;
}

/** The register's coverage by township (households and labourers reached), if the form has one. */
function Coverage({ c, base, scopeField, onPlaces }) {
  const [coverage, setCoverage] = useState(null);
  useEffect(() => {
    api.call(`${base}/coverage?by=${encodeURIComponent(scopeField)}`)
      .then(({ body }) => {
        setCoverage(body);
        onPlaces(body.groups.map((g) => g.key));
      })
      .catch(() => setCoverage(undefined));
  }, [base]);
  if (!coverage) return null;
  const places = coverage.groups.map((g) => g.key || c.no_place);
  const series = (name, field) => ({ name, values: [...coverage.groups.map((g) => g[field] ?? 0), coverage.total[field] ?? 0] });
  return html`<${BarChart} id="coverage" c=${c} unit="%" axis=${c.coverage_axis} title=${c.by_township(c.coverage)}
    groups=${[...places, c.total]} series=${[series(c.household_coverage, 'household_coverage'), series(c.member_coverage, 'member_coverage')]} />`;
}

/** The registered households nobody has visited yet, by township: a list to hand out. */
function Missing({ c, base, scopeField, places }) {
  const [place, setPlace] = useState('');
  const [pages, setPages] = useState(null);
  const load = async (cursor, kept) => {
    const query = new URLSearchParams({ limit: '100' });
    if (place) query.set(scopeField, place);
    if (cursor) query.set('cursor', cursor);
    const { body } = await api.call(`${base}/coverage/missing?${query}`);
    setPages({ items: [...kept, ...body.items], next: body.next_cursor });
  };
  useEffect(() => {
    load(null, []).catch(() => setPages(undefined));
  }, [base, place]);
  if (pages === undefined || places.length === 0) return null;
  const names = (household) => (Array.isArray(household.members) ? household.members : []).map((p) => p.name).filter(Boolean).join('、');
  return html`
    <section aria-labelledby="missing-h" class="missing">
      <h3 id="missing-h">${c.missing}</h3>
      <label for="missing-place">${c.township}</label>
      <select id="missing-place" onChange=${(e) => setPlace(e.currentTarget.value)}>
        <option value="">${c.all_townships}</option>
        ${places.map((p) => html`<option value=${p} selected=${p === place}>${p}</option>`)}
      </select>
      ${pages && pages.items.length === 0 && html`<p>${c.missing_none}</p>`}
      ${pages && pages.items.length > 0 && html`
        <table class="dense">
          <thead><tr><th scope="col">${c.household_number}</th><th scope="col">${c.township}</th><th scope="col">${c.village}</th><th scope="col">${c.registered_people}</th></tr></thead>
          <tbody>${pages.items.map((h) => html`
            <tr key=${h.household_id}><td>${h.household_id}</td><td>${h[scopeField]}</td><td>${h.village}</td><td>${names(h)}</td></tr>`)}
          </tbody>
        </table>`}
      ${pages?.next && html`<button type="button" onClick=${() => load(pages.next, pages.items)}>${c.more_missing}</button>`}
    </section>`;
}

/** Counts by day with the days between filled in as 0, so the line's spacing is time's. */
function everyDay(body) {
  if (!body || body.groups.length === 0) return body && { groups: [], values: [] };
  const counted = new Map(body.groups.map((g) => [g.key, g.count]));
  const groups = [];
  const day = new Date(`${body.groups[0].key}T00:00:00Z`);
  const last = new Date(`${body.groups[body.groups.length - 1].key}T00:00:00Z`);
  while (day <= last && groups.length < 3660) {
    groups.push(day.toISOString().slice(0, 10));
    day.setUTCDate(day.getUTCDate() + 1);
  }
  return { groups, values: groups.map((d) => counted.get(d) ?? 0) };
}

export function ProgressScreen({ c, w, lang, form, schema }) {
  const [counts, setCounts] = useState({});
  const [error, setError] = useState('');
  const [places, setPlaces] = useState([]);
  const base = form ? `/api/v1/forms/${encodeURIComponent(form.id)}` : '';

  useEffect(() => {
    if (!form) return;
    for (const by of ['day', 'submitted_by', 'review_status']) {
      api.call(`${base}/progress?by=${by}`)
        .then(({ body }) => setCounts((all) => ({ ...all, [by]: body })))
        .catch((e) => setError(e instanceof api.Offline ? w.network_needed : e.message));
    }
  }, [form?.id]);

  if (!form || !schema) return html`<p class="loading">${w.loading}</p>`;
  const scopeField = placeField(schema).name || 'township';
  const count = (by, label) => {
    const body = counts[by];
    return body && { groups: body.groups.map(label), values: body.groups.map((g) => g.count) };
  };
  const days = everyDay(counts.day);
  const workers = count('submitted_by', (g) => (g.display_name ? `${g.display_name}` : g.key));
  const states = count('review_status', (g) => w.review[g.key] ?? g.key);
  return html`
    <h2>${c.progress} · ${form.title}</h2>
    ${error && html`<p class="warning" role="alert">${error}</p>`}
    <div class="charts">
      <${Coverage} c=${c} base=${base} scopeField=${scopeField} onPlaces=${setPlaces} />
      ${(schema['x-indicators'] ?? []).map((indicator) => html`
        <${Indicator} key=${indicator.id} c=${c} lang=${lang} schema=${schema} indicator=${indicator} scopeField=${scopeField} base=${base} />`)}
      ${days && days.groups.length > 0 && html`<${LineChart} id="per-day" c=${c} unit="count" axis=${c.day_axis}
        title=${c.per_day} groups=${days.groups} series=${[{ name: c.submissions_word, values: days.values }]} />`}
      ${workers && workers.groups.length > 0 && html`<${BarChart} id="per-worker" c=${c} unit="count" axis=${c.submissions_axis}
        title=${c.per_worker} groups=${workers.groups} series=${[{ name: c.submissions_word, values: workers.values }]} />`}
      ${states && states.groups.length > 0 && html`<${BarChart} id="review-states" c=${c} unit="count" axis=${c.submissions_axis}
        title=${c.per_state} groups=${states.groups} series=${[{ name: c.submissions_word, values: states.values }]} />`}
    </div>
    <${Missing} c=${c} base=${base} scopeField=${scopeField} places=${places} />`;
}
