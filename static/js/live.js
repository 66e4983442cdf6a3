// Live updates over Socket.IO, loaded only on pages that show live data, after first paint.
// Its words come from the page (translated there) and its numbers go through Intl (words.js).

import { countOf, fill, keepTimesFresh, showCount } from "./words.js";

const state = () => document.getElementById("live-state");

function say(text) {
  const el = state();
  if (el && text) el.textContent = text;
}

function addMember(data) {
  for (const list of document.querySelectorAll(`[data-members="${data.cohort_id}"]`)) {
    list.querySelector(".empty")?.remove();
    const li = document.createElement("li");
    const span = document.createElement("span");
    span.textContent = data.display_name; // text only: names are never parsed as HTML
    li.append(span);
    list.append(li);
  }
  for (const count of document.querySelectorAll(`[data-member-count="${data.cohort_id}"]`)) {
    showCount(count, countOf(count) + 1);
  }
}

function showProgress(data) {
  const bar = document.querySelector(`[data-sync-progress="${data.connection_id}"]`);
  if (bar) { bar.max = data.total; bar.value = data.done; }
  const text = document.querySelector(`[data-sync-text="${data.connection_id}"]`);
  if (text) text.textContent = fill(text.dataset.words, { done: data.done, total: data.total });
  if (data.done >= data.total && bar) bar.closest(".connection")?.setAttribute("data-done", "1");
}

// A goal's progress changed (new data, a check-in elsewhere): fetch this page again and swap in
// its goal cards, at most every 1.5 s, and never the card someone is using.
let pending = null;
function refreshGoals() {
  if (pending || !document.querySelector("[data-goal]")) return;
  pending = setTimeout(async () => {
    pending = null;
    const response = await fetch(location.href, { headers: { Accept: "text/html" } });
    if (!response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const card of document.querySelectorAll("[data-goal]")) {
      const next = page.querySelector(`[data-goal="${card.dataset.goal}"]`);
      if (next && !card.contains(document.activeElement)) card.replaceWith(next);
    }
  }, 1500);
}

export async function start() {
  const { io } = await import("/static/vendor/socket.io-4.8.4.esm.min.js");
  // `lb` keeps one connection's long-polling requests on one app process behind the proxy
  // (deploy/nginx/hearten.conf.template); it is random and means nothing to the server.
  const lb = Math.random().toString(36).slice(2, 10);
  const socket = io({ transports: ["websocket", "polling"], autoConnect: navigator.onLine,
                      query: { lb } });
  // Offline, the socket rests (no attempts bound to fail) and comes back with the network.
  addEventListener("offline", () => socket.disconnect());
  addEventListener("online", () => socket.connect());
  // An attempt that failed because the phone went offline meanwhile: rest until it is back.
  socket.on("connect_error", () => { if (!navigator.onLine) socket.disconnect(); });
  const labels = state()?.dataset || {};
  keepTimesFresh();
  socket.on("connect", () => { document.body.dataset.socket = "connected"; say(labels.on); });
  socket.on("disconnect", () => { document.body.dataset.socket = "disconnected"; say(labels.off); });
  socket.on("member_joined", addMember);
  socket.on("sync_progress", showProgress);
  socket.on("goal_progress", refreshGoals);
  socket.on("inbox", (data) => {
    // The unread count in the header follows the inbox live.
    const link = document.querySelector('a[href="/inbox"]');
    let badge = document.querySelector("[data-inbox-count]");
    if (!badge && link && data.unread) {
      badge = document.createElement("span");
      badge.className = "badge";
      badge.dataset.inboxCount = "";
      link.append(" ", badge);
    }
    if (badge) {
      if (data.unread) showCount(badge, data.unread);
      else badge.remove();
    }
  });
  socket.on("crisis_alert", () => {
    // Someone may need a coach now: the moderation badge counts up and the page says so.
    const link = document.querySelector('a[href="/moderation"]');
    let badge = document.querySelector("[data-moderation-count]");
    if (!badge && link) {
      badge = document.createElement("span");
      badge.className = "badge";
      badge.dataset.moderationCount = "";
      link.append(" ", badge);
    }
    if (badge) showCount(badge, countOf(badge) + 1);
    say(labels.crisis || "");
  });
  socket.on("import_progress", (data) => {
    const bar = document.querySelector(`[data-import-progress="${data.import_id}"]`);
    if (bar) bar.value = data.share * bar.max;
    if (data.share >= 1) location.reload(); // show what the file brought in
  });
  // Signed out elsewhere (another device, a password reset): leave for the sign-in page. When
  // this page signs itself out, the form's own redirect does that, with its goodbye message.
  socket.on("signed_out", () => { socket.close(); location.assign("/login"); });
  document.addEventListener("submit", (event) => {
    if (event.target.matches("[data-signout]")) socket.close();
  });
  if (document.querySelector("[data-feed]")) (await import("./feed.js")).follow(socket);
  window.hearten = Object.assign(window.hearten || {}, { socket });
}
