// The service worker: keeps this build of the app on the phone so it opens with no connection.
// The server writes the build and the list of files into this file; a new build is a new worker,
// which keeps its own files and drops the old ones once it takes over.
// The API is never cached here: the app keeps forms, drafts and the outbox in IndexedDB itself.

const BUILD = '__BUILD__';
const FILES = __ASSETS__;
const CACHE = `app-${BUILD}`;

/** The page of this build: a server upgraded meanwhile would answer another build's, which fails the install (it is tried again later). */
async function page() {
  const answer = await fetch('/', { cache: 'no-cache' });
  if (!answer.ok || !(await answer.clone().text()).includes(BUILD)) throw new Error('the server runs another build');
  return answer;
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(FILES);
    await cache.put('/', await page());
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name))))
    .then(() => self.clients.claim()));
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin) return;
  // The API and the operators' routes are the server's, also when opened in a tab.
  if (/^\/(api\/|healthz$|readyz$|metrics$)/.test(url.pathname)) return;
  if (request.mode === 'navigate') {
    // Every page of the app is the same page: this build's, at once, whatever the signal.
    event.respondWith(caches.match('/', { cacheName: CACHE }).then((kept) => kept ?? fetch(request)));
    return;
  }
  if (url.pathname.startsWith('/app/')) {
    event.respondWith(caches.match(request, { cacheName: CACHE }).then((kept) => kept ?? fetch(request)));
  }
});
