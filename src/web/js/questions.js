// The questionnaire, rendered from a form's JSON Schema: one control per question, named by its title
// (the contract the browser tests and screen readers rely on). Knows nothing of the network or storage:
// it shows `answers` and reports each change as (pointer, value).

import { html } from '../vendor/htm-preact-standalone.js';
import { deref, kindOf, titleOf, hintOf, choicesOf, conditions, inheritedFor, itemsOf, itemLabel, itemName } from './schema/walk.js';
import { join } from './schema/pointer.js';
import { normalize } from './schema/resident-id.js';
import { FileQuestion } from './attachments.js';

/** More choices than this become a `<select>`: a radio list longer than a phone screen is worse. */
const MAX_RADIOS = 8;

/** An element id for the question at `pointer` (ids must be unique and plain). */
export function questionId(pointer) {
  return `q${Array.from(pointer, (c) => (/[A-Za-z0-9]/.test(c) ? c : `_${c.codePointAt(0).toString(16)}_`)).join('')}`;
}

// Kept as typed (numbers too: `3000.` must stay on screen); read as numbers when sent (walk.js).
const typed = (value) => (normalize(value) === '' ? undefined : value);

function Problems({ id, list }) {
  if (!list?.length) return null;
  return html`<p class="field-error" id=${`${id}-e`}>${list.join('；')}</p>`;
}

function Title({ id, title, required, hint, as = 'label' }) {
  // The mark stays outside the label: the question's accessible name is its title alone.
  const mark = required ? html`<span class="required" aria-hidden="true">*</span>` : null;
  return html`
    <div class="q-title">
      ${as === 'label' ? html`<label for=${id}>${title}</label>` : html`<span id=${`${id}-t`}>${title}</span>`}${mark}
    </div>
    ${hint && html`<p class="hint" id=${`${id}-h`}>${hint}</p>`}`;
}

function Question(props) {
  const { root, schema: raw, name, pointer, value, onChange, lang, w, problemsAt, required } = props;
  const schema = deref(root, raw);
  const kind = kindOf(root, schema);
  const title = titleOf(schema, name, lang);
  const hint = hintOf(schema, lang);
  const id = questionId(pointer);
  const problems = problemsAt(pointer);
  const invalid = problems.length > 0;
  // The hint, then what is wrong: read out after the question's name.
  const described = [hint && `${id}-h`, invalid && `${id}-e`].filter(Boolean).join(' ') || undefined;
  const block = (body) => html`<div class=${`question${invalid ? ' invalid' : ''}`}>${body}<${Problems} id=${id} list=${problems} /></div>`;

  switch (kind) {
    case 'calculation':
      return null;
    case 'object':
      return html`
        <fieldset class="group">
          <legend>${title}</legend>
          <${ObjectFields} ...${props} schema=${schema} value=${value ?? {}} />
        </fieldset>`;
    case 'group':
      return html`<${Repeat} ...${props} schema=${schema} title=${title} id=${id} problems=${problems} />`;
    case 'photo':
    case 'signature':
    case 'audio':
    case 'document':
      return html`<${FileQuestion} ...${props} kind=${kind} schema=${schema} id=${id} title=${title} block=${block}
        invalid=${invalid} described=${described}
        titleBlock=${(as) => html`<${Title} id=${id} title=${title} required=${required} hint=${hint} as=${as} />`} />`;
    case 'consent':
      return block(html`
        <div class="check">
          <input type="checkbox" id=${id} checked=${value === true} aria-required=${required} aria-invalid=${invalid} aria-describedby=${described}
            onChange=${(e) => onChange(pointer, e.currentTarget.checked ? true : undefined)} />
          <${Title} id=${id} title=${title} required=${required} hint=${hint} />
        </div>`);
    case 'boolean':
      return block(html`
        <${Title} id=${id} title=${title} required=${required} hint=${hint} as="span" />
        <div role="radiogroup" class="choices inline" aria-labelledby=${`${id}-t`} aria-required=${required} aria-invalid=${invalid} aria-describedby=${described}>
          ${[[true, w.yes], [false, w.no]].map(([choice, label], i) => html`
            <label class="choice"><input type="radio" name=${id} id=${i === 0 ? id : undefined} checked=${value === choice}
              onChange=${() => onChange(pointer, choice)} />${label}</label>`)}
        </div>`);
    case 'choice': {
      const choices = choicesOf(root, schema, lang);
      if (choices.length > MAX_RADIOS) {
        return block(html`
          <${Title} id=${id} title=${title} required=${required} hint=${hint} />
          <select id=${id} aria-required=${required} aria-invalid=${invalid} aria-describedby=${described}
            onChange=${(e) => onChange(pointer, e.currentTarget.selectedIndex === 0 ? undefined : choices[e.currentTarget.selectedIndex - 1].value)}>
            <option value="" selected=${value === undefined}>${w.choose}</option>
            ${choices.map((c) => html`<option value=${String(c.value)} selected=${value === c.value}>${c.label}</option>`)}
          </select>`);
      }
      return block(html`
        <${Title} id=${id} title=${title} required=${required} hint=${hint} as="span" />
        <div role="radiogroup" class="choices" aria-labelledby=${`${id}-t`} aria-required=${required} aria-invalid=${invalid} aria-describedby=${described}>
          ${choices.map((c, i) => html`
            <label class="choice"><input type="radio" name=${id} id=${i === 0 ? id : undefined} checked=${value === c.value}
              onChange=${() => onChange(pointer, c.value)} />${c.label}</label>`)}
        </div>`);
    }
    case 'choices': {
      const chosen = Array.isArray(value) ? value : [];
      const choices = choicesOf(root, schema, lang);
      const flip = (choice) => {
        const next = chosen.includes(choice) ? chosen.filter((c) => c !== choice) : [...chosen, choice];
        onChange(pointer, next.length ? choices.map((c) => c.value).filter((v) => next.includes(v)) : undefined);
      };
      return block(html`
        <${Title} id=${id} title=${title} required=${required} hint=${hint} as="span" />
        <div role="group" class="choices" aria-labelledby=${`${id}-t`} aria-describedby=${described}>
          ${choices.map((c, i) => html`
            <label class="choice"><input type="checkbox" id=${i === 0 ? id : undefined} checked=${chosen.includes(c.value)}
              onChange=${() => flip(c.value)} />${c.label}</label>`)}
        </div>`);
    }
    default: {
      const attributes = {
        integer: { inputmode: 'numeric' },
        number: { inputmode: 'decimal' },
        date: { type: 'date' },
        'resident-id': { inputmode: 'numeric', autocomplete: 'off' },
        mobile: { type: 'tel', inputmode: 'numeric', autocomplete: 'off' },
        text: { autocomplete: 'off' },
      }[kind] ?? {};
      const shown = value === undefined || value === null ? '' : String(value);
      return block(html`
        <${Title} id=${id} title=${title} required=${required} hint=${hint} />
        <div class=${kind === 'resident-id' ? 'with-button' : ''}>
          <input id=${id} type="text" ...${attributes} value=${shown} autocapitalize="off" autocorrect="off" spellcheck="false"
            aria-required=${required} aria-invalid=${invalid} aria-describedby=${described}
            onInput=${(e) => onChange(pointer, typed(e.currentTarget.value))} />
          ${kind === 'resident-id' && html`
            <button type="button" class="quiet" onClick=${() => { onChange(pointer, `${shown}X`); document.getElementById(id)?.focus(); }}>${w.id_x}</button>`}
        </div>`);
    }
  }
}

function Repeat(props) {
  const { root, schema, pointer, value, onChange, lang, w, title, id, problems } = props;
  const items = Array.isArray(value) ? value : [];
  const min = schema.minItems ?? 0;
  const max = schema.maxItems ?? Infinity;
  const name = itemName(schema, title, lang);
  return html`
    <section class="repeat" aria-labelledby=${`${id}-t`}>
      <h3 id=${`${id}-t`}>${title}</h3>
      ${items.map((item, i) => {
        const label = itemLabel(schema, title, i + 1, lang);
        return html`
          <fieldset class="group item" key=${i}>
            <legend>${label}</legend>
            <${ObjectFields} ...${props} schema=${schema.items} pointer=${`${pointer}/${i}`} value=${item ?? {}}
              inherited=${itemsOf(props.inherited)} />
            ${items.length > min && html`
              <button type="button" class="quiet remove"
                onClick=${() => confirm(w.confirm_remove(label)) && onChange(pointer, items.filter((_, j) => j !== i))}>${w.remove(label)}</button>`}
          </fieldset>`;
      })}
      ${problems.length > 0 && html`<p class="field-error" id=${`${id}-e`}>${problems.join('；')}</p>`}
      ${items.length < max && html`
        <button type="button" id=${id} class="add" onClick=${() => onChange(pointer, [...items, {}])}>${w.add(name)}</button>`}
    </section>`;
}

/** The questions of one object, minus those its answers hide; the ones they require are marked. */
export function ObjectFields(props) {
  const { root, schema: raw, pointer, value } = props;
  const schema = deref(root, raw);
  const { hidden, required, below } = conditions(root, schema, value, props.inherited);
  return Object.entries(schema.properties ?? {})
    .filter(([name, child]) => child !== false && !hidden.has(name))
    .map(([name, child]) => {
      const at = join(pointer, name);
      return html`<${Question} ...${props} key=${name} name=${name} schema=${child} pointer=${at}
        value=${value?.[name]} required=${required.has(name)} inherited=${inheritedFor(below, name)} />`;
    });
}
