// Charts that answer one question each: inline SVG drawn here, with a <title> on every bar and
// point (`思林镇 就业率 58.33%`), the numbers in a table below, and the chart saved as SVG or PNG
// and its data as CSV.

import { html, useRef } from '../../vendor/htm-preact-standalone.js';
import { keep } from './save.js';

const COLOURS = ['#0b4f8a', '#2e8540', '#d98b00', '#b3261e', '#6a3d9a', '#00838f', '#7b5e00', '#5f6368'];
const WIDTH = 720;
const LEFT = 150;
const RIGHT = 70;

/** A value as the chart says it: rates with %, counts as integers. */
export const valueText = (value, unit) => (unit === '%' ? `${Number(value).toFixed(2)}%` : String(Math.round(value)));

/** A CSV cell that a spreadsheet will not run as a formula: the server's guard (`neutralize_formula`). */
function cell(value) {
  if (typeof value === 'number') return String(value);
  let text = String(value ?? '');
  if (/^[\t\r\n\0]/.test(text) || /^[=+\-@]/.test(text.trimStart())) text = `'${text}`;
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function SaveButtons({ svg, name, groups, series, unit, c }) {
  const asSvg = () => new Blob([new XMLSerializer().serializeToString(svg.current)], { type: 'image/svg+xml' });
  const png = () => {
    const image = new Image();
    const url = URL.createObjectURL(asSvg());
    image.onload = () => {
      const canvas = document.createElement('canvas');
      canvas.width = image.width * 2;
      canvas.height = image.height * 2;
      const context = canvas.getContext('2d');
      context.fillStyle = '#fff';
      context.fillRect(0, 0, canvas.width, canvas.height);
      context.drawImage(image, 0, 0, canvas.width, canvas.height);
      URL.revokeObjectURL(url);
      canvas.toBlob((blob) => keep(blob, `${name}.png`));
    };
    image.src = url;
  };
  const csv = () => {
    const header = ['', ...series.map((s) => `${s.name}${unit === '%' ? ' (%)' : ''}`)];
    const rows = groups.map((g, i) => [g, ...series.map((s) => s.values[i])]);
    const text = [header, ...rows].map((row) => row.map(cell).join(',')).join('\r\n');
    keep(new Blob([`\ufeff${text}\r\n`], { type: 'text/csv' }), `${name}.csv`);
  };
  return html`
    <div class="chart-actions">
      <button type="button" class="quiet" onClick=${() => keep(asSvg(), `${name}.svg`)}>${c.save_svg}</button>
      <button type="button" class="quiet" onClick=${png}>${c.save_png}</button>
      <button type="button" class="quiet" onClick=${csv}>${c.save_csv}</button>
    </div>`;
}

function DataTable({ groups, series, unit }) {
  return html`
    <table class="dense chart-data">
      <thead><tr><td></td>${series.map((s) => html`<th scope="col" class="number">${s.name}</th>`)}</tr></thead>
      <tbody>${groups.map((g, i) => html`
        <tr><th scope="row">${g}</th>${series.map((s) => html`<td class="number">${valueText(s.values[i], unit)}</td>`)}</tr>`)}
      </tbody>
    </table>`;
}

/** Horizontal bars, one row per group; several series side by side, or `stacked`. */
export function BarChart({ id, title, axis, groups, series, unit, stacked = false, c }) {
  const svg = useRef(null);
  const rowHeight = stacked || series.length === 1 ? 26 : 14 * series.length + 8;
  const top = 30;
  const legend = series.length > 1 ? 24 : 0;
  const height = top + groups.length * rowHeight + 40 + legend;
  const totals = groups.map((_, i) => (stacked ? series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0) : Math.max(...series.map((s) => s.values[i] ?? 0))));
  const max = unit === '%' ? 100 : Math.max(1, ...totals);
  const x = (value) => LEFT + (value / max) * (WIDTH - LEFT - RIGHT);
  // Counts are whole: a middle tick at 0.5 or 3.5 would print as a rounded, repeated number.
  const ticks = unit === '%' || max % 2 === 0 ? [0, max / 2, max] : [0, max];
  const bars = [];
  groups.forEach((group, i) => {
    let start = 0;
    series.forEach((s, k) => {
      const value = s.values[i] ?? 0;
      const y = top + i * rowHeight + (stacked || series.length === 1 ? 3 : 4 + k * 14);
      const h = stacked || series.length === 1 ? rowHeight - 6 : 12;
      const from = stacked ? start : 0;
      bars.push(html`<rect x=${x(from)} y=${y} width=${Math.max(0, x(from + value) - x(from))} height=${h} fill=${COLOURS[k % COLOURS.length]}>
        <title>${`${group} ${s.name} ${valueText(value, unit)}`}</title></rect>`);
      if (stacked) start += value;
    });
    const label = stacked ? totals[i] : series.length === 1 ? series[0].values[i] : null;
    if (label !== null && label !== undefined) {
      bars.push(html`<text x=${x(stacked ? totals[i] : label) + 4} y=${top + i * rowHeight + rowHeight / 2 + 4} class="chart-value">${valueText(label, unit)}</text>`);
    }
    bars.push(html`<text x=${LEFT - 6} y=${top + i * rowHeight + rowHeight / 2 + 4} text-anchor="end" class="chart-label">${group}</text>`);
  });
  const bottom = top + groups.length * rowHeight;
  return html`
    <figure class="chart" aria-labelledby=${`${id}-t`}>
      <figcaption id=${`${id}-t`}>${title}</figcaption>
      <svg ref=${svg} xmlns="http://www.w3.org/2000/svg" viewBox=${`0 0 ${WIDTH} ${height}`} width=${WIDTH} height=${height} role="img" aria-label=${title}
        font-family="system-ui, sans-serif" font-size="13">
        <text x=${LEFT} y="18" class="chart-title" font-weight="600">${title}</text>
        ${bars}
        <line x1=${LEFT} y1=${bottom} x2=${WIDTH - RIGHT} y2=${bottom} stroke="#555" />
        ${ticks.map((t) => html`<text x=${x(t)} y=${bottom + 16} text-anchor="middle" fill="#333">${valueText(t, unit)}</text>`)}
        <text x=${(LEFT + WIDTH - RIGHT) / 2} y=${bottom + 34} text-anchor="middle" fill="#333">${axis}</text>
        ${series.length > 1 && series.map((s, k) => html`
          <g><rect x=${LEFT + k * 110} y=${height - 12} width="10" height="10" fill=${COLOURS[k % COLOURS.length]} />
          <text x=${LEFT + k * 110 + 14} y=${height - 3} fill="#333">${s.name}</text></g>`)}
      </svg>
      <${SaveButtons} svg=${svg} name=${id} groups=${groups} series=${series} unit=${unit} c=${c} />
      <${DataTable} groups=${groups} series=${series} unit=${unit} />
    </figure>`;
}

/** A line through time: one point per day. */
export function LineChart({ id, title, axis, groups, series, unit, c }) {
  const svg = useRef(null);
  const height = 260;
  const top = 30;
  const bottom = height - 50;
  const values = series[0].values;
  const max = Math.max(1, ...values);
  const step = groups.length > 1 ? (WIDTH - 60 - 40) / (groups.length - 1) : 0;
  const x = (i) => 60 + i * step;
  const y = (v) => bottom - (v / max) * (bottom - top);
  const points = values.map((v, i) => `${x(i)},${y(v)}`).join(' ');
  return html`
    <figure class="chart" aria-labelledby=${`${id}-t`}>
      <figcaption id=${`${id}-t`}>${title}</figcaption>
      <svg ref=${svg} xmlns="http://www.w3.org/2000/svg" viewBox=${`0 0 ${WIDTH} ${height}`} width=${WIDTH} height=${height} role="img" aria-label=${title}
        font-family="system-ui, sans-serif" font-size="13">
        <text x="60" y="18" font-weight="600">${title}</text>
        <line x1="60" y1=${bottom} x2=${WIDTH - 40} y2=${bottom} stroke="#555" />
        <line x1="60" y1=${top} x2="60" y2=${bottom} stroke="#555" />
        ${[0, max].map((t) => html`<text x="54" y=${y(t) + 4} text-anchor="end" fill="#333">${valueText(t, unit)}</text>`)}
        <polyline points=${points} fill="none" stroke=${COLOURS[0]} stroke-width="2" />
        ${values.map((v, i) => html`<circle cx=${x(i)} cy=${y(v)} r="4" fill=${COLOURS[0]}><title>${`${groups[i]} ${series[0].name} ${valueText(v, unit)}`}</title></circle>`)}
        ${groups.map((g, i) => (groups.length <= 12 || i % Math.ceil(groups.length / 12) === 0) && html`
          <text x=${x(i)} y=${bottom + 16} text-anchor="middle" fill="#333">${g.slice(5)}</text>`)}
        <text x=${WIDTH / 2} y=${height - 8} text-anchor="middle" fill="#333">${axis}</text>
      </svg>
      <${SaveButtons} svg=${svg} name=${id} groups=${groups} series=${series} unit=${unit} c=${c} />
      <${DataTable} groups=${groups} series=${series} unit=${unit} />
    </figure>`;
}
