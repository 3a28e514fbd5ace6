// The app shell: the session, the language, the outbox count and which screen is shown.
// Screens get what they need as props; none of them touches IndexedDB or the network itself
// except through `api.js`, `outbox.js` and `store.js`.

import { html, render, useState, useEffect, useCallback } from '../vendor/htm-preact-standalone.js';
import * as api from './api.js';
import * as outbox from './outbox.js';
import * as uploads from './uploads.js';
import * as store from './store.js';
import * as forms from './forms.js';
import { LANGS, words } from './i18n.js';
import { Login } from './screens/login.js';
import { Home } from './screens/home.js';
import { Fill } from './screens/fill.js';
import { Done } from './screens/done.js';
import { Submission } from './screens/submission.js';

function useRoute() {
  const [path, setPath] = useState(location.pathname + location.search);
  useEffect(() => {
    const back = () => setPath(location.pathname + location.search);
    addEventListener('popstate', back);
    return () => removeEventListener('popstate', back);
  }, []);
  const go = useCallback((next, { replace = false } = {}) => {
    history[replace ? 'replaceState' : 'pushState'](null, '', next);
    setPath(next);
    scrollTo(0, 0);
  }, []);
  return [path, go];
}

/** The console, fetched the first time staff open it: field workers' phones never load it. */
let consoleLoad = null;

function Console(props) {
  const [shell, setShell] = useState(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    let live = true;
    consoleLoad ??= import('./console/shell.js');
    consoleLoad.then((module) => live && setShell(() => module.Console), () => {
      consoleLoad = null;
      if (live) setFailed(true);
    });
    return () => { live = false; };
  }, []);
  if (failed) return html`<p class="warning">${props.w.network_needed}</p>`;
  if (!shell) return html`<p class="loading">${props.w.loading}</p>`;
  return html`<${shell} ...${props} />`;
}

/** What waits to go up, questionnaires and files, or that all went. */
function uploadStatus(w, waiting, files) {
  if (waiting + files === 0) return w.all_uploaded;
  return [waiting > 0 && w.to_upload(waiting), files > 0 && w.files_to_upload(files)].filter(Boolean).join(' · ');
}

function Header({ w, lang, setLang, session, counts, syncing, onSync, online, update }) {
  const { waiting, files } = counts;
  return html`
    <header class="bar">
      <h1>${w.app}</h1>
      <button type="button" class="quiet" lang=${lang === 'en' ? 'zh-CN' : 'en'} onClick=${() => setLang(lang === 'en' ? 'zh-CN' : 'en')}>${w.language}</button>
    </header>
    ${update && html`<p class="note update">${w.new_version} <button type="button" onClick=${() => location.reload()}>${w.reload}</button></p>`}
    ${!isSecureContext && html`<p class="warning">${w.not_https}</p>`}
    ${session && html`
      <div class="syncbar">
        <p role="status" class=${waiting + files > 0 ? 'waiting' : 'done'}>${uploadStatus(w, waiting, files)}</p>
        <button type="button" onClick=${onSync} disabled=${syncing} aria-busy=${syncing}>${w.sync}</button>
      </div>
      ${counts.refused_files > 0 && html`<p class="warning">${w.files_refused(counts.refused_files)}</p>`}
      ${syncing && html`<p class="note">${w.syncing}</p>`}
      ${counts.conflicts > 0 && html`<p class="warning">${w.conflicts(counts.conflicts)}</p>`}
      ${counts.returned > 0 && html`<p class="warning">${w.returned_count(counts.returned)}</p>`}
      ${!online && html`<p class="note">${w.offline}</p>`}
      ${session.expired && html`<p class="warning">${w.needs_sign_in}</p>`}`}`;
}

/** Chinese unless the worker asked for English: with the switch, or a link with `?lang=en`. */
function initialLang() {
  const asked = new URLSearchParams(location.search).get('lang');
  if (LANGS.includes(asked)) localStorage.setItem('lang', asked);
  return localStorage.getItem('lang') ?? 'zh-CN';
}

function App() {
  const [lang, setLangState] = useState(initialLang);
  const [session, setSession] = useState(undefined);
  const [catalogue, setCatalogue] = useState(null);
  const [counts, setCounts] = useState({ waiting: 0, files: 0, refused_files: 0, conflicts: 0, returned: 0 });
  const [update, setUpdate] = useState(false);
  const [storageBlocked, setStorageBlocked] = useState(false);
  const [syncing, setSyncing] = useState(false);
  const [online, setOnline] = useState(navigator.onLine);
  let [path, go] = useRoute();
  const w = words(lang);

  const setLang = (next) => {
    localStorage.setItem('lang', next);
    document.documentElement.lang = next;
    setLangState(next);
  };

  const refreshSession = useCallback(async () => setSession((await api.session()) ?? null), []);

  useEffect(() => {
    document.documentElement.lang = lang;
    refreshSession();
  }, []);

  // The server's words for problems: fetched when online, kept for offline use.
  useEffect(() => {
    let live = true;
    store.getValue(`messages:${lang}`).then((cached) => live && cached && setCatalogue(cached));
    api.messages(lang)
      .then((fresh) => { store.setValue(`messages:${lang}`, fresh); if (live) setCatalogue(fresh); })
      .catch(() => {});
    return () => { live = false; };
  }, [lang]);

  const count = useCallback(async () => {
    const me = await api.session();
    setCounts(me ? await outbox.counts(me.username) : { waiting: 0, files: 0, refused_files: 0, conflicts: 0, returned: 0 });
  }, []);

  const sync = useCallback(async () => {
    setSyncing(true);
    try {
      await outbox.sync();
      await forms.refresh().catch(() => {});
    } finally {
      setSyncing(false);
      await refreshSession();
      await count();
    }
  }, []);

  useEffect(() => {
    store.keep();
    // A new build took over while the app is open: offer it (drafts are saved; nothing is lost).
    const hadController = !!navigator.serviceWorker?.controller;
    const took = () => hadController && setUpdate(true);
    navigator.serviceWorker?.addEventListener('controllerchange', took);
    addEventListener('survey-session', refreshSession);
    const blocked = () => setStorageBlocked(true);
    addEventListener('survey-storage-blocked', blocked);
    const unsubscribe = outbox.subscribe(count);
    const unsubscribeFiles = uploads.subscribe((what) => what === 'state' && count());
    const up = () => { setOnline(true); outbox.sync(); };
    const down = () => setOnline(false);
    addEventListener('online', up);
    addEventListener('offline', down);
    return () => {
      unsubscribe();
      unsubscribeFiles();
      navigator.serviceWorker?.removeEventListener('controllerchange', took);
      removeEventListener('survey-session', refreshSession);
      removeEventListener('survey-storage-blocked', blocked);
      removeEventListener('online', up);
      removeEventListener('offline', down);
    };
  }, []);

  useEffect(() => {
    if (!session) return;
    count();
    if (navigator.onLine && !session.expired) sync();
  }, [session?.username, session?.access_token]);

  if (session === undefined) return html`<p class="loading">${w.loading}</p>`;
  const props = { w, lang, session, catalogue, go, online };
  const route = path;
  path = path.split('?')[0];
  const staff = session && session.role !== 'field_worker';
  const inConsole = staff && (path === '/' || path.startsWith('/console'));
  let screen;
  if (inConsole && session.expired) {
    // Signed out under way: sign in again here, and the same screen comes back.
    screen = html`<${Login} ...${props} onSignedIn=${refreshSession} />`;
  } else if (!session || (path === '/login')) {
    screen = html`<${Login} ...${props} onSignedIn=${async () => { await refreshSession(); go('/', { replace: true }); }} />`;
  } else if (path.startsWith('/fill/')) {
    screen = html`<${Fill} ...${props} draftId=${decodeURIComponent(path.slice(6))} onQueued=${() => { count(); if (navigator.onLine) sync(); }} />`;
  } else if (path.startsWith('/done/')) {
    screen = html`<${Done} ...${props} id=${decodeURIComponent(path.slice(6))} />`;
  } else if (inConsole) {
    screen = html`<${Console} ...${props} route=${path === '/' ? '/console/submissions' : route} />`;
  } else if (path.startsWith('/submissions/')) {
    screen = html`<${Submission} ...${props} id=${decodeURIComponent(path.slice(13))} />`;
  } else {
    screen = html`<${Home} ...${props} waiting=${counts.waiting + counts.files}
      onSignOut=${async () => { uploads.stop(); await api.signOut(); await refreshSession(); }} />`;
  }
  return html`
    <${Header} w=${w} lang=${lang} setLang=${setLang} session=${session} counts=${counts}
      syncing=${syncing} onSync=${sync} online=${online} update=${update} />
    ${storageBlocked && html`<p class="warning" role="alert">${w.storage_blocked}</p>`}
    <main class=${inConsole ? 'console-main' : ''}>${screen}</main>`;
}

render(html`<${App} />`, document.getElementById('app'));

// After the first load, so the worker's copies come from the HTTP cache instead of competing with it.
if ('serviceWorker' in navigator) {
  const register = () => navigator.serviceWorker.register('/sw.js').catch(() => {});
  if (document.readyState === 'complete') register();
  else addEventListener('load', register, { once: true });
}
