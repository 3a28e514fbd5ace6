// Photo, signature, recording and document questions: the file is made on the phone (a photo
// downscaled, a signature drawn, a voice note recorded), kept in IndexedDB with the questionnaire,
// and the answer is its name. It is uploaded after the questionnaire (uploads.js).

import { html, useState, useEffect, useRef } from '../vendor/htm-preact-standalone.js';
import * as store from './store.js';
import { mediaType } from './schema/walk.js';

/** The file name's extension for each attachment type. */
const EXTENSIONS = {
  'image/jpeg': 'jpg', 'image/webp': 'webp', 'image/png': 'png', 'audio/webm': 'webm',
  'audio/ogg': 'ogg', 'audio/mp4': 'm4a', 'audio/mpeg': 'mp3', 'application/pdf': 'pdf',
};

/** What MediaRecorder is asked to record for each audio type, best first. */
const RECORDINGS = {
  'audio/webm': ['audio/webm;codecs=opus', 'audio/webm'],
  'audio/ogg': ['audio/ogg;codecs=opus', 'audio/ogg'],
  'audio/mp4': ['audio/mp4'],
};

/** The longest side of a photo when the form does not say (`x-max-pixels`). */
const MAX_PIXELS = 1600;

const essence = (type) => String(type ?? '').split(';')[0].trim().toLowerCase();

/** Files being made and kept right now: submitting waits for them (`settled`). */
let making = Promise.resolve();
/** Recordings under way, each with how to stop it (and keep what it recorded). */
const recordings = new Set();

function track(work) {
  making = making.then(() => work, () => work).catch(() => {});
  return work;
}

/**
 * Resolves once every photo, signature or recording under way is kept and its answer set: a
 * recording still running when the worker submits is stopped and kept first.
 */
export async function settled() {
  for (const stop of recordings) stop();
  await making;
}

/** A new file name for question `name`: plain, unique within the questionnaire. */
function fileName(name, type) {
  const random = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16).padStart(2, '0')).join('');
  const base = String(name).replace(/[^A-Za-z0-9_-]/g, '').slice(0, 40) || 'file';
  return `${base}-${random}.${EXTENSIONS[type]}`;
}

/** Hex SHA-256 of a file, which the server checks the upload against; none on a plain-HTTP page. */
async function digest(blob) {
  if (!crypto.subtle) return undefined;
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()));
  return Array.from(hash, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * A photo as the form wants it: at most `maxPixels` on its longest side, in `type`. Always drawn
 * anew, which also leaves the camera's metadata (its GPS position, the phone's serial) behind.
 */
async function downscale(picture, type, maxPixels) {
  // Older engines know no `imageOrientation` option; they turn photos by their EXIF anyway.
  const bitmap = await createImageBitmap(picture, { imageOrientation: 'from-image' })
    .catch(() => createImageBitmap(picture));
  const scale = Math.min(1, maxPixels / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  const context = canvas.getContext('2d');
  context.fillStyle = '#fff';
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  return new Promise((resolve) => canvas.toBlob(resolve, type, 0.85));
}

/** Shows a kept file: the photo or signature, or a player for a recording. */
function Preview({ owner, name, kind, title, w }) {
  const [url, setUrl] = useState(null);
  useEffect(() => {
    let made = null;
    let live = true;
    store.file(owner, name).then((kept) => {
      if (!live || !kept?.blob) return;
      made = URL.createObjectURL(kept.blob);
      setUrl(made);
    });
    return () => {
      live = false;
      if (made) URL.revokeObjectURL(made);
    };
  }, [owner, name]);
  if (!url) return html`<p class="file-name">${name}</p>`;
  if (kind === 'audio') return html`<audio controls src=${url} aria-label=${w.recording_of(title)}></audio>`;
  if (kind === 'document') return html`<p class="file-name">${name}</p>`;
  return html`<img class="preview" src=${url} alt=${w.picture_of(title)} />`;
}

function SignaturePad({ w, onDone, title }) {
  const canvas = useRef(null);
  const drawn = useRef(false);
  const [trouble, setTrouble] = useState('');
  const blank = () => {
    const c = canvas.current;
    const context = c.getContext('2d');
    context.save();
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.fillStyle = '#fff';
    context.fillRect(0, 0, c.width, c.height);
    context.restore();
    drawn.current = false;
  };
  useEffect(() => {
    const c = canvas.current;
    const ratio = devicePixelRatio || 1;
    c.width = Math.round(c.clientWidth * ratio);
    c.height = Math.round(c.clientHeight * ratio);
    const context = c.getContext('2d');
    context.scale(ratio, ratio);
    Object.assign(context, { lineWidth: 2.5, lineCap: 'round', lineJoin: 'round', strokeStyle: '#111' });
    blank();
    let last = null;
    const at = (e) => {
      const box = c.getBoundingClientRect();
      return [e.clientX - box.left, e.clientY - box.top];
    };
    const down = (e) => {
      c.setPointerCapture(e.pointerId);
      last = at(e);
      e.preventDefault();
    };
    const move = (e) => {
      if (!last) return;
      const next = at(e);
      context.beginPath();
      context.moveTo(...last);
      context.lineTo(...next);
      context.stroke();
      last = next;
      drawn.current = true;
    };
    const up = () => { last = null; };
    c.addEventListener('pointerdown', down);
    c.addEventListener('pointermove', move);
    c.addEventListener('pointerup', up);
    c.addEventListener('pointercancel', up);
    return () => {
      c.removeEventListener('pointerdown', down);
      c.removeEventListener('pointermove', move);
      c.removeEventListener('pointerup', up);
      c.removeEventListener('pointercancel', up);
    };
  }, []);
  const save = () => {
    if (!drawn.current) return setTrouble(w.sign_first);
    setTrouble('');
    track(new Promise((resolve) => canvas.current.toBlob(resolve, 'image/png')).then(onDone));
  };
  return html`
    <canvas ref=${canvas} class="signature" role="img" aria-label=${w.signature_area(title)}></canvas>
    ${trouble && html`<p class="field-error">${trouble}</p>`}
    <div class="actions">
      <button type="button" class="quiet" onClick=${blank}>${w.sign_clear}</button>
      <button type="button" onClick=${save}>${w.sign_save}</button>
    </div>`;
}

function Recorder({ type, w, onDone, fallback }) {
  const [recording, setRecording] = useState(false);
  const [seconds, setSeconds] = useState(0);
  const [trouble, setTrouble] = useState('');
  const recorder = useRef(null);
  const mime = (RECORDINGS[type] ?? []).find((m) => globalThis.MediaRecorder?.isTypeSupported(m));
  useEffect(() => () => recorder.current?.state === 'recording' && recorder.current.stop(), []);
  // Phones allow the microphone on HTTPS pages only.
  if (!isSecureContext) return html`<p class="note">${w.needs_secure_address}</p>${fallback}`;
  if (!mime || !navigator.mediaDevices?.getUserMedia) return html`<p class="note">${w.cannot_record}</p>${fallback}`;
  const start = async () => {
    setTrouble('');
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch {
      return setTrouble(w.no_microphone);
    }
    const chunks = [];
    const started = Date.now();
    const tick = setInterval(() => setSeconds(Math.round((Date.now() - started) / 1000)), 500);
    const made = new MediaRecorder(stream, { mimeType: mime });
    let stopped;
    track(new Promise((resolve) => { stopped = resolve; }));
    const stop = () => made.state === 'recording' && made.stop();
    made.ondataavailable = (e) => e.data.size && chunks.push(e.data);
    made.onstop = () => {
      clearInterval(tick);
      recordings.delete(stop);
      stream.getTracks().forEach((t) => t.stop());
      setRecording(false);
      stopped(onDone(new Blob(chunks, { type })));
    };
    recordings.add(stop);
    made.start(1000);
    recorder.current = made;
    setSeconds(0);
    setRecording(true);
  };
  return html`
    ${trouble && html`<p class="field-error">${trouble}</p>`}
    ${recording
      ? html`<p class="note" aria-live="polite">${w.recording(seconds)}</p>
          <button type="button" class="primary" onClick=${() => recorder.current?.stop()}>${w.record_stop}</button>`
      : html`<button type="button" onClick=${start}>${w.record_start}</button>`}`;
}

/**
 * One attachment question. Without `owner` (a correction in the console) it shows the file's
 * name only: files are made and uploaded by the phone that filled the questionnaire.
 */
export function FileQuestion({ schema, name, pointer, value, onChange, w, owner, id, title, kind, titleBlock, block, invalid, described }) {
  const type = mediaType(schema);
  const [busy, setBusy] = useState(false);
  const [trouble, setTrouble] = useState('');
  const [again, setAgain] = useState(false);
  if (!owner) return block(html`${titleBlock('span')}<p class="file-name">${value ?? w.no_file}</p>`);

  const keep = (made) => track(keepNow(made));
  const keepNow = async (made) => {
    if (!made) return setTrouble(w.file_failed);
    if (essence(made.type) !== type) return setTrouble(w.wrong_file_type(type));
    setBusy(true);
    try {
      const file = { owner, name: fileName(name, type), type, blob: made, size: made.size, sha256: await digest(made), state: 'local', added_at: new Date().toISOString() };
      await store.saveFile(file);
      setTrouble('');
      setAgain(false);
      onChange(pointer, file.name);
    } catch {
      setTrouble(w.not_saved);
    } finally {
      setBusy(false);
    }
  };
  const picked = async (e) => {
    const chosen = e.currentTarget.files?.[0];
    e.currentTarget.value = '';
    if (!chosen) return;
    if (kind !== 'photo') return keep(chosen);
    setBusy(true);
    const photo = downscale(chosen, type, Number(schema['x-max-pixels']) || MAX_PIXELS);
    try {
      await track(photo.then(keepNow));
    } catch {
      setTrouble(w.file_failed);
    } finally {
      setBusy(false);
    }
  };
  const made = value && !again;
  // The native picker's words are the browser's (often English): it is hidden behind a button of
  // ours, and keeps the question's title as its name.
  const input = (accept, capture) => html`
    <input type="file" id=${id} class="visually-hidden file-input" accept=${accept} capture=${capture} disabled=${busy}
      aria-labelledby=${`${id}-t`} aria-invalid=${invalid} aria-describedby=${described} onChange=${picked} />
    <label for=${id} class="button" aria-hidden="true">${kind === 'photo' ? (made ? w.retake_photo : w.take_photo) : w.choose_file}</label>`;
  let control;
  if (kind === 'photo') control = input('image/*', 'environment');
  else if (kind === 'document') control = input(type);
  else if (made) control = html`<button type="button" class="quiet" onClick=${() => setAgain(true)}>${kind === 'audio' ? w.record_again : w.sign_again}</button>`;
  else if (kind === 'signature') control = html`<${SignaturePad} w=${w} title=${title} onDone=${keep} />`;
  else control = html`<${Recorder} type=${type} w=${w} onDone=${keep} fallback=${input(type)} />`;
  const picker = kind === 'photo' || kind === 'document';
  return block(html`
    ${titleBlock('span')}
    <div class="file-question" role=${picker ? undefined : 'group'} aria-labelledby=${picker ? undefined : `${id}-t`}
      id=${picker ? undefined : id} tabindex=${picker ? undefined : -1} aria-invalid=${picker ? undefined : invalid}
      aria-describedby=${picker ? undefined : described}>
      ${made && html`<${Preview} owner=${owner} name=${value} kind=${kind} title=${title} w=${w} />`}
      ${busy && html`<p class="note">${w.saving_file}</p>`}
      ${trouble && html`<p class="field-error" role="alert">${trouble}</p>`}
      ${control}
    </div>`);
}
