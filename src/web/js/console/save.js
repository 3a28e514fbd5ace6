// Saving a download to disk without a token in its URL: ask the server for a one-time link, read
// it here counting the bytes as they come, then hand the file to the browser to keep.

import * as api from '../api.js';

/** The file name a `Content-Disposition` header gives (`filename*=UTF-8''…` first). */
export function fileName(disposition, fallback) {
  const utf8 = /filename\*=UTF-8''([^;]+)/i.exec(disposition ?? '');
  if (utf8) return decodeURIComponent(utf8[1]);
  return /filename="([^"]+)"/i.exec(disposition ?? '')?.[1] ?? fallback;
}

/** Downloads `path`, calling `progress(bytes)` as it arrives; resolves with the file's name and size. */
export async function save(path, progress) {
  const { body: link } = await api.call('/api/v1/downloads', { method: 'POST', body: JSON.stringify({ path }) });
  const response = await fetch(link.href, { cache: 'no-store' });
  if (!response.ok) {
    const error = await response.json().catch(() => null);
    throw new api.ApiError(response.status, error);
  }
  const reader = response.body.getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    progress(received);
  }
  const name = fileName(response.headers.get('content-disposition'), 'download');
  keep(new Blob(chunks, { type: response.headers.get('content-type') ?? '' }), name);
  return { name, size: received };
}

/** Hands a file made in the page to the browser to keep, under `name`. */
export function keep(blob, name) {
  const url = URL.createObjectURL(blob);
  const anchor = document.createElement('a');
  anchor.href = url;
  anchor.download = name;
  anchor.click();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** `1.2 MB`, `350 KB`: a size as people read it. */
export function size(bytes) {
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1024))} KB`;
}
