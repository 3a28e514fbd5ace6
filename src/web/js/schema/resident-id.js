// Chinese resident ID numbers (GB 11643) and mobile numbers, read as the server reads them: tolerant of
// keyboard quirks (full-width digits, a lower-case x, surrounding spaces), which cleaning fixes later.

const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK = '10X98765432';

// Unicode's White_Space, as the server's `str::trim` has it (JS's own trim differs: it takes U+FEFF, leaves U+0085).
const EDGES = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;

/** NFKC, then trimmed: the server's normalisation, which validation and cleaning share. */
export const normalize = (text) => text.normalize('NFKC').replace(EDGES, '');

/** `{ok: true, birthDate: 'YYYY-MM-DD', male}` or `{ok: false, problem: 'shape'|'birth_date'|'check_digit'}`. */
export function residentId(value, today = new Date()) {
  const id = normalize(String(value)).toUpperCase();
  if (!/^[0-9]{17}[0-9X]$/.test(id)) return { ok: false, problem: 'shape' };
  const [year, month, day] = [id.slice(6, 10), id.slice(10, 12), id.slice(12, 14)].map(Number);
  const date = new Date(Date.UTC(year, month - 1, day));
  const real = date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
  const todayUtc = Date.UTC(today.getFullYear(), today.getMonth(), today.getDate());
  if (!real || year < 1900 || date.getTime() > todayUtc) return { ok: false, problem: 'birth_date' };
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(id[i]) * WEIGHTS[i];
  if (CHECK[sum % 11] !== id[17]) return { ok: false, problem: 'check_digit' };
  return { ok: true, birthDate: `${id.slice(6, 10)}-${id.slice(10, 12)}-${id.slice(12, 14)}`, male: Number(id[16]) % 2 === 1 };
}

export const isResidentId = (value) => residentId(value).ok;

export function isMobile(value) {
  return /^1[0-9]{10}$/.test(normalize(String(value)));
}
