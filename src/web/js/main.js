// The app shell: the session, the language, the outbox count and which screen is shown.
// Screens get what they need as props; none of them touches IndexedDB or the network itself
// except through `api.js`, `outbox.js` and `store.js`.

import { html, render, useState, useEffect, useCallback } from '../vendor/htm-preact-standalone.js';
import * as api from './api.js';
import * as outbox from './outbox.js';
import * as store from './store.js';
import * as forms from './forms.js';
import { words } from './i18n.js';
import { Login } from './screens/login.js';
import { Home } from './screens/home.js';
import { Fill } from './screens/fill.js';
import { Done } from './screens/done.js';
import { Submission } from './screens/submission.js';

function useRoute() {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const back = () => setPath(location.pathname);
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

function Header({ w, lang, setLang, session, waiting, syncing, onSync, online }) {
  return html`
    <header class="bar">
      <h1>${w.app}</h1>
      <button type="button" class="quiet" lang=${lang === 'en' ? 'zh-CN' : 'en'} onClick=${() => setLang(lang === 'en' ? 'zh-CN' : 'en')}>${w.language}</button>
    </header>
    ${session && html`
      <div class="syncbar">
        <p role="status" class=${waiting > 0 ? 'waiting' : 'done'}>${waiting > 0 ? w.to_upload(waiting) : w.all_uploaded}</p>
        <button type="button" onClick=${onSync} disabled=${syncing}>${syncing ? w.syncing : w.sync}</button>
      </div>
      ${!online && html`<p class="note">${w.offline}</p>`}
      ${session.expired && html`<p class="warning">${w.needs_sign_in}</p>`}`}`;
}

function App() {
  const [lang, setLangState] = useState(localStorage.getItem('lang') ?? 'zh-CN');
  const [session, setSession] = useState(undefined);
  const [catalogue, setCatalogue] = useState(null);
  const [waiting, setWaiting] = useState(0);
  const [syncing, setSyncing] = useState(false);
  const [online, setOnline] = useState(navigator.onLine);
  const [path, go] = useRoute();
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
    setWaiting(me ? await outbox.waitingCount(me.username) : 0);
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
    const unsubscribe = outbox.subscribe(count);
    const up = () => { setOnline(true); outbox.sync(); };
    const down = () => setOnline(false);
    addEventListener('online', up);
    addEventListener('offline', down);
    return () => { unsubscribe(); removeEventListener('online', up); removeEventListener('offline', down); };
  }, []);

  useEffect(() => {
    if (!session) return;
    count();
    if (navigator.onLine && !session.expired) sync();
  }, [session?.username, session?.access_token]);

  if (session === undefined) return html`<p class="loading">${w.loading}</p>`;
  const props = { w, lang, session, catalogue, go, online };
  let screen;
  if (!session || (path === '/login')) {
    screen = html`<${Login} ...${props} onSignedIn=${async () => { await refreshSession(); go('/', { replace: true }); }} />`;
  } else if (path.startsWith('/fill/')) {
    screen = html`<${Fill} ...${props} draftId=${decodeURIComponent(path.slice(6))} onQueued=${() => { count(); if (navigator.onLine) sync(); }} />`;
  } else if (path.startsWith('/done/')) {
    screen = html`<${Done} ...${props} id=${decodeURIComponent(path.slice(6))} />`;
  } else if (path.startsWith('/submissions/')) {
    screen = html`<${Submission} ...${props} id=${decodeURIComponent(path.slice(13))} />`;
  } else {
    screen = html`<${Home} ...${props} onSignOut=${async () => { await api.signOut(); await refreshSession(); }} />`;
  }
  return html`
    <${Header} w=${w} lang=${lang} setLang=${setLang} session=${session} waiting=${waiting}
      syncing=${syncing} onSync=${sync} online=${online} />
    <main>${screen}</main>`;
}

render(html`<${App} />`, document.getElementById('app'));

// After the first load, so the worker's copies come from the HTTP cache instead of competing with it.
if ('serviceWorker' in navigator) {
  const register = () => navigator.serviceWorker.register('/sw.js').catch(() => {});
  if (document.readyState === 'complete') register();
  else addEventListener('load', register, { once: true });
}
