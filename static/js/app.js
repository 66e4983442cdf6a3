// Hearten's only eager script: registers the service worker, fills in the timezone on the join
// form, loads the live module after first paint on pages that want live updates, and the
// composer's check where members write.

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
}

const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
for (const select of document.querySelectorAll("select[data-auto-timezone]")) {
  if (select.value === "UTC" && zone && [...select.options].some((o) => o.value === zone)) {
    select.value = zone;
  }
}

const live = document.body.dataset.live;
const saveData = document.body.dataset.saver === "on" ||
  (navigator.connection && navigator.connection.saveData);
if (live && !saveData) {
  const start = () => import("./live.js").then((m) => m.start(live));
  if (document.readyState === "complete") start();
  else addEventListener("load", start, { once: true });
}

if (document.querySelector("textarea[data-screen]")) import("./compose.js");

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

// Signing out: this phone stops getting notifications meant for the member who leaves.
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
