/* Ambient scribe – service worker (served at /sw.js, scope /).
 *
 * It caches only the app's own static files, listed below by name, so that the app can be
 * installed and its shell opens on a flaky network. Everything else – the API (/v1/…), the
 * capture socket, any consultation data – never passes through this cache: those requests are
 * not handled here at all. The files are fetched network-first, so an update of the server
 * reaches the phone on the next load; the cache is only the fallback when offline.
 */
'use strict';

const CACHE = 'scribe-static-v1';
const FILES = [
  '/',
  '/static/app.js',
  '/static/worklet.js',
  '/static/style.css',
  '/static/icon.svg',
  '/static/manifest.webmanifest',
];

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches.open(CACHE)
      .then((cache) => Promise.all(FILES.map((url) => cache.add(url).catch(() => {}))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin || url.search || !FILES.includes(url.pathname)) {
    return;  // not ours: the browser handles it, nothing is cached
  }
  event.respondWith(
    fetch(req)
      .then((res) => {
        if (res.ok && res.type === 'basic') {
          const copy = res.clone();
          caches.open(CACHE).then((cache) => cache.put(url.pathname, copy)).catch(() => {});
        }
        return res;
      })
      .catch(() => caches.match(url.pathname).then((hit) => hit || Response.error())),
  );
});
