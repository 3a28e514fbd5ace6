// Uploading the files of questionnaires the server has: tus (resumable) with the vendored
// tus-js-client, 1 MiB at a time. The upload's URL is kept with the file in IndexedDB as soon as
// the server gives it, so after a reload or a lost signal the upload asks the server where it got
// to (HEAD) and goes on from there; a file is marked sent only once the server has all of it.

import * as api from './api.js';
import * as store from './store.js';

const CHUNK = 1024 * 1024;
/** tus-js-client's own retries within one try (lost connections, a busy upload); then the outbox's backoff. */
const RETRY_DELAYS = [0, 2000, 5000, 10000];
/**
 * tus-js-client's requests have no deadline of their own: an upload that has moved no byte for
 * this long is given up for this round (as `api.js` gives up a request), so it never holds the
 * outbox, and every questionnaire behind it, for ever.
 */
const STALLED_MS = 120_000;

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
/** The upload under way, to stop when its worker signs out. */
let running = null;

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

/** Stops the upload under way (its worker signs out); it resumes when they are back. */
export function stop() {
  running?.abort();
}

/**
 * Uploads the waiting files of `username`'s questionnaires that the server has (sent), one at a
 * time, the longest-untried first, until `yieldTo()` says questionnaires wait to go first. Throws
 * `Offline` or `NeedsSignIn` when it has to stop; a file the server refuses is marked refused with
 * its reason and the others go on.
 */
export async function uploadWaiting(username, yieldTo = () => false) {
  const sent = new Set((await store.outbox()).filter((i) => i.state === 'sent' && i.username === username).map((i) => i.id));
  const waiting = (await store.files())
    .filter((f) => f.state === 'waiting' && sent.has(f.owner) && f.blob)
    .sort((a, b) => (a.tried_at ?? '').localeCompare(b.tried_at ?? ''));
  for (const file of waiting) {
    if (yieldTo()) return;
    await upload({ ...file, tried_at: new Date().toISOString() }, username);
  }
}

async function upload(file, username) {
  const Upload = (await tus()).Upload;
  const key = `${file.owner}/${file.name}`;
  let current = file;
  const remember = async (change) => {
    current = { ...current, ...change };
    await store.saveFile(current);
  };
  await remember({});
  let moved = Date.now();
  await new Promise((resolve, reject) => {
    let watchdog = null;
    let ended = false;
    const end = (settle) => {
      if (ended) return;
      ended = true;
      clearInterval(watchdog);
      running = null;
      progress.delete(key);
      settle();
    };
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
        moved = Date.now();
        // Only for the worker whose questionnaire it is: another who signed in on this phone
        // meanwhile may not (and the server would say the submission is not theirs).
        const session = await api.session();
        if (!session || session.expired || session.username !== username) throw new api.NeedsSignIn();
        request.setHeader('Authorization', `Bearer ${await api.accessToken()}`);
        request.setHeader('Accept-Language', localStorage.getItem('lang') ?? 'zh-CN');
      },
      onAfterResponse(request, response) {
        moved = Date.now();
        // A proxy's 5xx while the server restarts is no reason to start the file again from zero
        // (tus-js-client would, after any failed HEAD): it fails this try, and the next asks again.
        if (request.getMethod() === 'HEAD' && response.getStatus() >= 500) throw new api.Offline();
      },
      onUploadUrlAvailable() {
        remember({ url: upload.url }).catch(() => {});
      },
      onProgress(bytes) {
        moved = Date.now();
        progress.set(key, bytes);
        changed('progress');
      },
      async onSuccess() {
        try {
          // The server has it. The bytes stay as long as the questionnaire is listed (a month): a
          // correction made on this phone takes them along without downloading them again.
          await remember({ state: 'sent', url: undefined, sent_at: new Date().toISOString() });
          end(resolve);
        } catch (error) {
          end(() => reject(error));
        }
        changed('state');
      },
      async onError(error) {
        const refusal = refusalOf(error);
        try {
          if (refusal) await remember({ state: 'refused', url: undefined, error: refusal });
        } finally {
          const cause = error?.causingError ?? error?.cause ?? error;
          end(refusal ? resolve : () => reject(cause instanceof api.NeedsSignIn ? cause : new api.Offline()));
          if (refusal) changed('state');
        }
      },
    });
    watchdog = setInterval(() => {
      if (Date.now() - moved < STALLED_MS) return;
      upload.abort();
      end(() => reject(new api.Offline()));
    }, 5_000);
    running = { abort: () => { upload.abort(); end(() => reject(new api.NeedsSignIn())); } };
    upload.start();
  });
}

/** The server's verdict on the file itself (its type, its bytes, a name taken), not a passing failure. */
function refusalOf(error) {
  const response = error?.originalResponse;
  const status = response?.getStatus?.();
  // Not signed in, not theirs (now), busy, too many, a timeout: none is about the file.
  if (!status || status < 400 || status >= 500 || [401, 403, 404, 408, 423, 429].includes(status)) return undefined;
  let body = null;
  try {
    body = JSON.parse(response.getBody());
  } catch {
    // A proxy's page: not ours, so not a verdict on the file.
    return undefined;
  }
  const code = body?.error?.code;
  // A lost race over the offset, or an upload that expired, is tus-js-client's to settle by asking again.
  if (!code || code === 'upload_offset_mismatch' || code === 'upload_expired') return undefined;
  return { code, message: body.error.message };
}
