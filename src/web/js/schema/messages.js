// The server's words for a problem, from the catalogue it serves at `GET /api/v1/messages?lang=`:
// a template per key, filled with the detail's params, and the field named by its labels
// (`第2位劳动力 · 身份证号：校验位不正确`), exactly as the server writes `message`.

import { deref } from './walk.js';
import { segments } from './pointer.js';

/** What is wrong, without the field: `校验位不正确`. */
export function describe(catalogue, key, params = {}) {
  const template = catalogue?.messages?.[key] ?? key;
  const separator = catalogue?.field?.list_separator ?? ', ';
  return template.replace(/\{(\w+)\}/g, (whole, name) => {
    const value = params[name];
    if (value === undefined) return whole;
    return Array.isArray(value) ? value.join(separator) : String(value);
  });
}

/** The labels along `pointer`: `第2位劳动力 · 身份证号`; the whole questionnaire for the root. */
export function fieldName(catalogue, root, pointer, lang) {
  const parts = [];
  const names = segments(pointer);
  let current = root;
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    const property = current ? deref(root, current).properties?.[name] : undefined;
    const schema = property === undefined ? undefined : deref(root, property);
    // As the server: `title`, or `x-title-en` in English, else the property's name.
    const label = schema?.[lang === 'en' ? 'x-title-en' : 'title'] ?? name;
    const next = names[i + 1];
    const items = schema?.items;
    if (items !== undefined && next !== undefined && /^\d+$/.test(next)) {
      const template = schema['x-item-label']?.[lang === 'en' ? 'en' : 'zh-CN']
        ?? (catalogue?.field?.item ?? '{label} #{n}').replace('{label}', label);
      parts.push(template.replace('{n}', String(Number(next) + 1)));
      current = items;
      i++;
    } else {
      parts.push(label);
      current = property;
    }
  }
  if (parts.length === 0) return catalogue?.field?.questionnaire ?? '';
  return parts.join(catalogue?.field?.separator ?? ' · ');
}

/** The whole message, as the server's `message`. */
export function message(catalogue, root, problem, lang) {
  return (catalogue?.field?.message ?? '{field}: {problem}')
    .replace('{field}', fieldName(catalogue, root, problem.path, lang))
    .replace('{problem}', describe(catalogue, problem.key, problem.params));
}
