// Hearten's service worker: a versioned app-shell cache, an offline page, network-first pages.
// The server fills in VERSION and PRECACHE (fingerprinted URLs) when it serves this file.
const VERSION = "__VERSION__";
const SHELL = `shell-${VERSION}`;
const PRECACHE = "__PRECACHE__";

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((cache) => cache.addAll(PRECACHE))
    .then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== SHELL).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    // Pages hold a member's own data: always from the network, never stored here.
    event.respondWith(fetch(request).catch(() => caches.match("/offline")));
    return;
  }
  if (url.pathname.startsWith("/static/") && url.searchParams.has("v")) {
    // Fingerprinted files never change: the cache first, then the network (and keep a copy).
    event.respondWith(caches.match(request).then((hit) => hit || fetch(request).then((res) => {
      if (res.ok) {
        const copy = res.clone();
        caches.open(SHELL).then((cache) => cache.put(request, copy));
      }
      return res;
    })));
  }
});
