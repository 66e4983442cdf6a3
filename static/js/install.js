// The offer to add Hearten to the home screen: from the second day of use, and after "Not now"
// not again for 30 days; once installed, never.

const KEY = "hearten.install";
const LATER_DAYS = 30;

function read() {
  try { return JSON.parse(localStorage.getItem(KEY) || "{}"); } catch { return {}; }
}

function write(state) {
  try { localStorage.setItem(KEY, JSON.stringify(state)); } catch { /* private mode */ }
}

export function offer(prompt, box) {
  const state = read();
  if (state.installed || (state.days || []).length < 2) return;
  if (state.later && Date.now() - state.later < LATER_DAYS * 864e5) return;
  box.hidden = false;
  box.querySelector("[data-install]").addEventListener("click", async () => {
    box.hidden = true;
    prompt.prompt();
    const choice = await prompt.userChoice;
    write({ ...read(), ...(choice.outcome === "accepted" ? { installed: true } : { later: Date.now() }) });
  }, { once: true });
  box.querySelector("[data-install-later]").addEventListener("click", () => {
    box.hidden = true;
    write({ ...read(), later: Date.now() });
  }, { once: true });
}
