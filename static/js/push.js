// Notifications on this phone: offered on the settings page, turned on only after a tap on the
// explanation there (never on page load). Where the phone cannot do it, the page says so plainly:
// the inbox is the channel. Its words come from the page, in the reader's language.

const box = document.querySelector("[data-push]");
const csrf = document.querySelector("meta[name=csrf-token]")?.content || "";
const words = {
  on: box?.dataset.saidOn || "", off: box?.dataset.saidOff || "", failed: box?.dataset.saidFailed || "",
};

function show(selector, visible) {
  const el = box.querySelector(selector);
  if (el) el.hidden = !visible;
}

function say(text) {
  const el = box.querySelector("[data-push-state]");
  if (el) el.textContent = text;
}

function keyBytes(base64url) {
  const padded = base64url.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((base64url.length + 3) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

async function send(path, body) {
  const response = await fetch(path, {
    method: "POST", credentials: "same-origin", keepalive: true,
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(String(response.status));
}

async function refresh(registration) {
  const subscription = await registration.pushManager.getSubscription();
  const denied = Notification.permission === "denied";
  show("[data-push-blocked]", denied);
  show("[data-push-on]", !subscription && !denied);
  show("[data-push-off]", Boolean(subscription));
  say(subscription ? words.on : words.off);
}

async function start() {
  if (!box) return;
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    show("[data-push-unsupported]", true);
    return;
  }
  const registration = await navigator.serviceWorker.ready;
  await refresh(registration);
  box.querySelector("[data-push-on]")?.addEventListener("click", async () => {
    try {
      if (await Notification.requestPermission() !== "granted") { await refresh(registration); return; }
      const subscription = await registration.pushManager.subscribe({
        userVisibleOnly: true, applicationServerKey: keyBytes(box.dataset.publicKey),
      });
      await send("/api/v1/push/subscriptions", subscription.toJSON());
    } catch {
      say(words.failed);
      return;
    }
    await refresh(registration);
  });
  box.querySelector("[data-push-off]")?.addEventListener("click", async () => {
    const subscription = await registration.pushManager.getSubscription();
    if (subscription) {
      await send("/api/v1/push/unsubscribe", { endpoint: subscription.endpoint }).catch(() => {});
      await subscription.unsubscribe();
    }
    await refresh(registration);
  });
}

start();
