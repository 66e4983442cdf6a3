// Hearten's service worker: a versioned app-shell cache, an offline page, network-first pages
// (the member's last-seen ones kept for reading offline).
// The server fills in VERSION and PRECACHE (fingerprinted URLs) when it serves this file.
const VERSION = "__VERSION__";
const SHELL = `shell-${VERSION}`;
const PRECACHE = "__PRECACHE__";

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((cache) => cache.addAll(PRECACHE))
    .then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  const keep = [SHELL, PAGES, META];
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => !keep.includes(k)).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

// The last-seen pages a member reads offline: home, the group, goals, inbox and their tracker.
const PAGES = "pages";
const META = "meta";
const KEPT = /^\/(home|feed|feed\/\d+|goals|goals\/\d+|inbox|tracker)$/;

// Pages come from the network; the ones above are kept for reading offline, for as long as the
// same member is signed in (the server tags each page with an opaque viewer). Another member, or
// nobody, signed in on this phone: the kept pages are forgotten at once.
async function remember(url, response) {
  const viewer = response.headers.get("X-Hearten-Viewer");
  if (!viewer) return;
  const meta = await caches.open(META);
  const known = await meta.match("/viewer").then((r) => (r ? r.text() : null));
  if (viewer !== known) {
    await caches.delete(PAGES);
    await meta.put("/viewer", new Response(viewer));
  }
  const plain = [...url.searchParams.keys()].every((k) => k === "source" || k === "cohort");
  if (viewer !== "none" && response.ok && KEPT.test(url.pathname) && plain) {
    const pages = await caches.open(PAGES);
    await pages.put(url.pathname, response);
  }
}

function navigate(event) {
  const url = new URL(event.request.url);
  const network = fetch(event.request);
  // The copy is taken before the page reads the answer (this runs first).
  event.waitUntil(network.then((response) => remember(url, response.clone())).catch(() => {}));
  return network.catch(async () => {
    const kept = await caches.open(PAGES).then((pages) => pages.match(url.pathname));
    return kept ? markKept(kept) : caches.match("/offline");
  });
}

// A kept page says so (`<body data-kept>`): the phone may claim to be online while no network
// answers, and the page then still knows to keep actions in the outbox.
async function markKept(kept) {
  const html = (await kept.text()).replace("<body", "<body data-kept");
  const headers = new Headers(kept.headers);
  headers.delete("Content-Length");
  headers.delete("Content-Encoding");
  return new Response(html, { status: kept.status, headers });
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    event.respondWith(navigate(event));
    return;
  }
  if (!url.pathname.startsWith("/static/")) return;
  const keepCopy = (res) => {
    if (res.ok) {
      const copy = res.clone();
      caches.open(SHELL).then((cache) => cache.put(request, copy));
    }
    return res;
  };
  if (url.searchParams.has("v")) {
    // Fingerprinted files never change: the cache first, then the network (and keep a copy).
    event.respondWith(caches.match(request).then((hit) => hit || fetch(request).then(keepCopy)));
  } else {
    // Modules the scripts import by name: the network first (keeping a copy), the copy offline.
    event.respondWith(fetch(request).then(keepCopy)
      .catch(() => caches.match(request, { ignoreSearch: true })
        .then((hit) => hit || Response.error())));
  }
});

// --- Push: show what arrived, and open the right page on a tap ---

const ICON = "/static/icons/icon-192.png";

// Only pages of this app: a link in a push never leads elsewhere.
function pageUrl(raw) {
  try {
    const url = new URL(raw || "/", self.location.origin);
    return url.origin === self.location.origin ? url.href : new URL("/", self.location.origin).href;
  } catch {
    return new URL("/", self.location.origin).href;
  }
}

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = {};
  }
  const options = {
    body: data.body || "",
    icon: ICON,
    badge: ICON,
    data: { url: pageUrl(data.url) },
  };
  // The same tag replaces the notification already shown (a newer count, or a repeat after a
  // retry) instead of adding a second one, quietly.
  if (data.tag) options.tag = String(data.tag);
  event.waitUntil(self.registration.showNotification(data.title || "Hearten", options));
});

// Focus a window of the app that is open and take it to the page, or open one.
async function openPage(url) {
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const same = windows.find((client) => client.url === url)
    || windows.find((client) => new URL(client.url).origin === self.location.origin);
  if (same) {
    try {
      await same.focus();
    } catch {
      // Focusing is allowed only right after a tap; navigating still is.
    }
    if (same.url === url) return same;
    try {
      const moved = await same.navigate(url);
      if (moved) return moved;
    } catch {
      // A window this worker does not control cannot be navigated: open a new one instead.
    }
  }
  return self.clients.openWindow(url);
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const opening = openPage(pageUrl(event.notification.data && event.notification.data.url));
  event.waitUntil(opening);
});

// The browser renewed this phone's subscription: tell the server the new one, so pushes keep
// coming (the old endpoint is dropped there). Sent with the member's cookies; if they signed out
// meanwhile, the server refuses and nothing is stored.
self.addEventListener("pushsubscriptionchange", (event) => {
  const renew = async () => {
    const old = event.oldSubscription;
    const fresh = event.newSubscription || await self.registration.pushManager.subscribe(
      old ? old.options : { userVisibleOnly: true });
    const page = await fetch("/api/v1/csrf-token", { credentials: "same-origin" });
    const { csrf_token: csrf } = await page.json();
    const headers = { "Content-Type": "application/json", "X-CSRFToken": csrf };
    if (old) {
      await fetch("/api/v1/push/unsubscribe", { method: "POST", credentials: "same-origin",
        headers, body: JSON.stringify({ endpoint: old.endpoint }) }).catch(() => {});
    }
    await fetch("/api/v1/push/subscriptions", { method: "POST", credentials: "same-origin",
      headers, body: JSON.stringify(fresh.toJSON()) });
  };
  event.waitUntil(renew().catch(() => {}));
});
