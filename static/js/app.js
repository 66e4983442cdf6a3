// Hearten's only eager script: registers the service worker, fills in the timezone on the join
// form, loads the live module after first paint on pages that want live updates, and the
// composer's check where members write.

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
}

// Intl's time zone costs tens of milliseconds on a cheap phone: only where a form asks for it.
for (const select of document.querySelectorAll("select[data-auto-timezone]")) {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (select.value === "UTC" && zone && [...select.options].some((o) => o.value === zone)) {
    select.value = zone;
  }
}

const live = document.body.dataset.live;
const saveData = document.body.dataset.saver === "on" ||
  (navigator.connection && navigator.connection.saveData);
if (live && !saveData) {
  // Live updates need the network: offline (a page kept for reading), they start once it is back.
  const start = () => import("./live.js").then((m) => m.start(live));
  const kept = "kept" in document.body.dataset; // a copy from the phone, shown offline
  const whenOnline = () => (navigator.onLine && !kept ? start()
    : addEventListener("online", start, { once: true }));
  if (document.readyState === "complete") whenOnline();
  else addEventListener("load", whenOnline, { once: true });
}

if (document.querySelector("textarea[data-screen]")) import("./compose.js");

// Offline: the last-seen page says so, and actions wait in the outbox until the network is back.
if (document.getElementById("outbox")) import("./outbox.js").then((m) => m.start());

// Installing: the days the app was used are counted here; the offer comes from install.js,
// only when the browser says the app can be installed, and never on the first day.
const offer = document.getElementById("install-offer");
if (offer) {
  try {
    const state = JSON.parse(localStorage.getItem("hearten.install") || "{}");
    const today = new Date().toISOString().slice(0, 10);
    state.days = [...new Set([...(state.days || []), today])].slice(-10);
    localStorage.setItem("hearten.install", JSON.stringify(state));
  } catch { /* private mode: no offer */ }
  addEventListener("beforeinstallprompt", (event) => {
    event.preventDefault();
    import("./install.js").then((m) => m.offer(event, offer));
  });
}
if (document.querySelector("[data-push]")) import("./push.js");

// Signing out: this phone stops getting notifications meant for the member who leaves (the
// server's answer then clears the pages, the outbox and the worker kept for them).
for (const form of document.querySelectorAll("[data-signout]")) {
  form.addEventListener("submit", () => {
    navigator.serviceWorker?.ready.then((r) => r.pushManager?.getSubscription()).then((s) => {
      if (!s) return;
      const csrf = document.querySelector("meta[name=csrf-token]")?.content || "";
      fetch("/api/v1/push/unsubscribe", { method: "POST", keepalive: true,
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ endpoint: s.endpoint }) }).catch(() => {});
      s.unsubscribe();
    }).catch(() => {});
  });
}
