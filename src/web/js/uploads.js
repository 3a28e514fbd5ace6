// Uploading the files of questionnaires the server has: tus (resumable) with the vendored
// tus-js-client, 1 MiB at a time. The upload's URL is kept with the file in IndexedDB as soon as
// the server gives it, so after a reload or a lost signal the upload asks the server where it got
// to (HEAD) and goes on from there; a file is marked sent only once the server has all of it.

import * as api from './api.js';
import * as store from './store.js';

const CHUNK = 1024 * 1024;
/** tus-js-client's own retries within one try (lost connections, a busy upload); then the outbox's backoff. */
const RETRY_DELAYS = [0, 2000, 5000, 10000];

let library = null;

/** tus-js-client (86 KB) is loaded only when there is something to upload. */
function tus() {
  library ??= new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = new URL('../vendor/tus-js-client/tus.min.js', import.meta.url).href;
    script.onload = () => resolve(globalThis.tus);
    script.onerror = () => {
      library = null;
      reject(new api.Offline());
    };
    document.head.append(script);
  });
  return library;
}

/** Bytes sent of the file being uploaded now, by `owner/name`. */
const progress = new Map();
const listeners = new Set();

/** Called with `progress` as bytes go out, and `state` when a file was sent or refused. */
export function subscribe(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

const changed = (what) => listeners.forEach((listener) => listener(what));

/** How far an upload under way has got, in per cent, if one is. */
export function percentOf(file) {
  const sent = progress.get(`${file.owner}/${file.name}`);
  return sent === undefined || !file.size ? undefined : Math.floor((sent / file.size) * 100);
}

/**
 * Uploads the waiting files of `username`'s questionnaires that the server has (sent), one at a
 * time. Throws `Offline` or `NeedsSignIn` when it has to stop; a file the server refuses is marked
 * refused with its reason and the others go on.
 */
export async function uploadWaiting(username) {
  const sent = new Set((await store.outbox()).filter((i) => i.state === 'sent' && i.username === username).map((i) => i.id));
  const waiting = (await store.files()).filter((f) => f.state === 'waiting' && sent.has(f.owner));
  for (const file of waiting) await upload(file);
}

async function upload(file) {
  const Upload = (await tus()).Upload;
  const key = `${file.owner}/${file.name}`;
  let current = file;
  const remember = async (change) => {
    current = { ...current, ...change };
    await store.saveFile(current);
  };
  await new Promise((resolve, reject) => {
    const upload = new Upload(file.blob, {
      endpoint: '/api/v1/uploads',
      uploadUrl: file.url ?? null,
      chunkSize: CHUNK,
      retryDelays: RETRY_DELAYS,
      metadata: {
        submission: file.owner,
        filename: file.name,
        filetype: file.type,
        ...(file.sha256 ? { sha256: file.sha256 } : {}),
      },
      // The URL lives in IndexedDB with the file, not in tus-js-client's localStorage.
      storeFingerprintForResuming: false,
      async onBeforeRequest(request) {
        request.setHeader('Authorization', `Bearer ${await api.accessToken()}`);
      },
      onUploadUrlAvailable() {
        remember({ url: upload.url }).catch(() => {});
      },
      onProgress(bytes) {
        progress.set(key, bytes);
        changed('progress');
      },
      async onSuccess() {
        progress.delete(key);
        // The server has it. The bytes stay as long as the questionnaire is listed (a month): a
        // correction made on this phone takes them along without downloading them again.
        await remember({ state: 'sent', url: undefined, sent_at: new Date().toISOString() });
        changed('state');
        resolve();
      },
      async onError(error) {
        progress.delete(key);
        const refusal = refusalOf(error);
        if (refusal) {
          await remember({ state: 'refused', url: undefined, error: refusal }).catch(() => {});
          changed('state');
          resolve();
        } else {
          const cause = error?.causingError ?? error?.cause ?? error;
          reject(cause instanceof api.NeedsSignIn ? cause : new api.Offline());
        }
      },
    });
    upload.start();
  });
}

/** The server's verdict on the file itself (its type, its bytes, a name taken), not a passing failure. */
function refusalOf(error) {
  const response = error?.originalResponse;
  const status = response?.getStatus?.();
  if (!status || status < 400 || status >= 500 || [401, 408, 423, 429].includes(status)) return undefined;
  let body = null;
  try {
    body = JSON.parse(response.getBody());
  } catch {
    // A proxy's page: not ours, so not a verdict on the file.
    return undefined;
  }
  const code = body?.error?.code;
  // A lost race over the offset is tus-js-client's to settle by asking again.
  if (!code || code === 'upload_offset_mismatch' || code === 'upload_not_found' || code === 'upload_expired') return undefined;
  return { code, message: body.error.message };
}
