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
const saveData = navigator.connection && navigator.connection.saveData;
if (live && !saveData) {
  const start = () => import("./live.js").then((m) => m.start(live));
  if (document.readyState === "complete") start();
  else addEventListener("load", start, { once: true });
}

if (document.querySelector("textarea[data-screen]")) import("./compose.js");
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
