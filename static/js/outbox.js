// The outbox: what a member does while offline (a check-in, steps or sleep typed in, a cheer, a
// comment, a post) waits on this phone in IndexedDB and is sent when the network returns. Each
// action carries its own random key, and the server counts a key once, so an action sent twice
// (the network cut after the server had it, but before the answer came back) is stored once.
// Online, forms are sent the plain way; nothing here runs for them.

const DB = "hearten";
const STORE = "outbox";
const RETRY_MS = 20000;

const box = document.getElementById("outbox");
const note = document.getElementById("offline-note");
const lang = document.documentElement.lang || "en";
const viewer = document.body.dataset.viewer || "";
const outcome = { sent: 0, refused: 0, signedOut: false };
// A page the phone kept, shown because the network did not answer: offline, whatever the
// browser says, until something gets through.
let kept = "kept" in document.body.dataset;
const offline = () => !navigator.onLine || kept;
let flushing = null;
let timer = null;

// Once the member signs out (or the page goes), the database is never opened again from here:
// the sign-out answer deletes it, and a late open would bring it back.
let leaving = false;

function database() {
  if (leaving) return Promise.reject(new Error("leaving"));
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "key" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

// One transaction on the outbox; the database is closed after it, so that signing out (which
// deletes the database) is never held up by an open page.
async function withStore(mode, work) {
  const db = await database();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = work(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request ? request.result : undefined);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

// Whether anything may be waiting, so that an ordinary page never opens the database at all.
const HINT = "hearten.outbox";
const mayWait = () => { try { return localStorage.getItem(HINT) === "1"; } catch { return true; } };
const hint = (on) => { try { localStorage.setItem(HINT, on ? "1" : "0"); } catch { /* private */ } };

const everything = () => withStore("readonly", (store) => store.getAll());
const keep = (entry) => withStore("readwrite", (store) => store.put(entry));
const drop = (key) => withStore("readwrite", (store) => store.delete(key));

// What is waiting for the member signed in here, oldest first. Anything another member left on
// this phone is thrown away unread.
async function waiting() {
  const mine = [];
  for (const entry of await everything()) {
    if (entry.viewer === viewer) mine.push(entry);
    else await drop(entry.key);
  }
  return mine.sort((a, b) => a.created - b.created);
}

function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function localDay(date = new Date()) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

function count(n) {
  const form = new Intl.PluralRules(lang).select(n) === "one" ? box.dataset.one : box.dataset.other;
  return form.replace("{n}", new Intl.NumberFormat(lang).format(n));
}

async function show() {
  if (!box) return;
  const n = mayWait() ? (await waiting().catch(() => [])).length : 0;
  if (!n) hint(false);
  const words = [];
  if (n) words.push(count(n));
  if (outcome.signedOut && n) words.push(box.dataset.signedOut);
  if (!n && outcome.sent) words.push(box.dataset.sent);
  if (outcome.refused) words.push(box.dataset.refused);
  box.querySelector("[data-outbox-text]").textContent = words.join(" ");
  box.querySelector("[data-outbox-refresh]").hidden = !(!n && (outcome.sent || outcome.refused));
  box.hidden = words.length === 0;
  box.dataset.waitingCount = String(n);
  if (!n) for (const label of document.querySelectorAll("[data-waiting-note]")) label.remove();
  clearTimeout(timer);
  if (n && navigator.onLine && !outcome.signedOut) timer = setTimeout(flush, RETRY_MS);
}

function showOffline() {
  if (!note) return;
  note.hidden = !offline();
  if (note.hidden) return;
  const rendered = new Date(document.body.dataset.rendered);
  const sameDay = localDay(rendered) === localDay();
  const when = new Intl.DateTimeFormat(lang, sameDay ? { timeStyle: "short" }
    : { dateStyle: "medium", timeStyle: "short" }).format(rendered);
  note.textContent = note.dataset.text.replace("{time}", when);
  // Thank-you notes saved with the page belong to that moment, not to now.
  for (const old of document.querySelectorAll("main > .notice:not(#offline-note):not(#outbox)")) {
    old.hidden = true;
  }
}

// The form shows that its action is waiting: buttons-only forms (a cheer, a check-in) are held
// still; forms one types in are cleared, ready for the next.
function markWaiting(form) {
  if (form.querySelector("textarea, input[type=number], input[type=date], input[type=datetime-local]")) {
    form.reset();
  } else {
    // Held, not disabled: the focus stays where it was, and a second tap sends nothing more.
    form.dataset.queued = "";
    for (const button of form.querySelectorAll("button")) button.setAttribute("aria-disabled", "true");
  }
  if (!form.querySelector("[data-waiting-note]")) {
    const label = document.createElement("span");
    label.className = "small waiting";
    label.dataset.waitingNote = "";
    label.textContent = box.dataset.waitingLabel;
    form.append(label);
  }
}

async function queue(form, submitter) {
  const data = new FormData(form, submitter);
  data.delete("csrf_token");
  data.set("client_key", newKey());
  if ("outboxDay" in form.dataset && !data.get("day")) data.set("day", localDay());
  hint(true);
  await keep({ key: data.get("client_key"), viewer, url: form.action,
               fields: [...data].map(([name, value]) => [name, String(value)]),
               created: Date.now() });
  markWaiting(form);
  await show();
}

async function freshToken() {
  const response = await fetch("/api/v1/csrf-token", { credentials: "same-origin" });
  return (await response.json()).csrf_token;
}

// Sends what is waiting, in order. A lost answer keeps the action for the next try (its key
// makes the resend harmless); a clear "no" from the server drops it and says so; a signed-out
// session or a busy server leaves everything for later.
async function send() {
  if (!mayWait()) return;
  const entries = await waiting();
  if (!entries.length) return;
  const token = await freshToken();
  kept = false; // the server answered
  showOffline();
  for (const entry of entries) {
    const body = new URLSearchParams(entry.fields);
    body.set("csrf_token", token);
    const response = await fetch(entry.url, { method: "POST", body, credentials: "same-origin" });
    if (response.redirected && new URL(response.url).pathname.startsWith("/login")) {
      outcome.signedOut = true;
      return;
    }
    if (response.ok) {
      outcome.sent += 1;
    } else if (response.status >= 500 || response.status === 429) {
      return;
    } else {
      outcome.refused += 1;
    }
    await drop(entry.key);
  }
}

function flush() {
  if (!navigator.onLine) return Promise.resolve();
  flushing ||= send().catch(() => {}).finally(() => {
    flushing = null;
    show();
  });
  return flushing;
}

export function start() {
  addEventListener("pagehide", () => { leaving = true; });
  addEventListener("pageshow", (event) => { if (event.persisted) leaving = false; });
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.matches("[data-signout]")) leaving = true;
    if (!form.matches("form[data-outbox]")) return;
    if ("queued" in form.dataset) {
      event.preventDefault();
      event.stopImmediatePropagation();
      return;
    }
    if (!offline()) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    queue(form, event.submitter).catch(() => form.submit());
  }, true);
  addEventListener("online", () => { showOffline(); outcome.signedOut = false; flush(); });
  addEventListener("offline", () => { showOffline(); show(); });
  showOffline();
  show().then(() => (kept ? undefined : flush()));
}
