// The live feed: new posts, cheers and comments arrive without a reload. Every change carries
// the cohort's next number; when a number is skipped (or the socket was away), the page asks the
// server for everything after the last number it saw, so a missed message loses nothing.

export function follow(socket) {
  const feed = document.querySelector("[data-feed]");
  if (!feed) return;
  const cohort = feed.dataset.feed;
  const single = feed.dataset.single; // an item's own page follows that item only
  let last = Number(feed.dataset.lastSeq || 0);
  let running = null;
  let again = false;

  function place(article) {
    const current = document.getElementById(article.id);
    if (current) {
      if (!current.contains(document.activeElement)) current.replaceWith(article);
    } else if (!single) {
      feed.querySelector(".empty")?.remove();
      feed.prepend(article);
    }
  }

  async function fetchChanges() {
    const response = await fetch(`/feed/changes?cohort=${cohort}&after=${last}`,
                                 { headers: { Accept: "text/html" } });
    if (!response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const box = page.querySelector("[data-last-seq]");
    if (!box) return;
    for (const id of (box.dataset.removed || "").split(",").filter(Boolean)) {
      document.getElementById(`item-${id}`)?.remove();
    }
    for (const article of [...box.querySelectorAll("article[data-item]")].reverse()) place(article);
    last = Math.max(last, Number(box.dataset.lastSeq));
    feed.dataset.lastSeq = String(last);
    if ("more" in box.dataset) again = true; // far behind: the rest comes in the next answer
  }

  function catchUp() {
    if (running) { again = true; return running; }
    running = fetchChanges().catch(() => {}).finally(() => {
      running = null;
      if (again) { again = false; catchUp(); }
    });
    return running;
  }

  function showCheers(data) {
    const article = document.getElementById(`item-${data.item_id}`);
    if (!article) return;
    for (const count of article.querySelectorAll("[data-count]")) {
      const value = data.cheers[count.dataset.count] || 0;
      count.textContent = value ? String(value) : "";
    }
  }

  socket.on("feed", (data) => {
    if (data.seq <= last) return; // already seen (a replay, or our own fetch got there first)
    if (data.kind === "cheer" && data.seq === last + 1) {
      showCheers(data);
      last = data.seq;
      feed.dataset.lastSeq = String(last);
      return;
    }
    if (single && String(data.item_id) !== single && data.seq === last + 1) {
      last = data.seq; // news about other posts: nothing to show here
      return;
    }
    if (single && data.kind === "comment") { location.reload(); return; }
    catchUp();
  });
  socket.on("connect", () => { catchUp(); }); // after a reconnect: whatever was missed

  // After a cheer went through: the button shows it, the next tap takes it back, and the next
  // send carries a new key (the old one is spent).
  function toggle(form) {
    const button = form.querySelector("button");
    const given = button.getAttribute("aria-pressed") === "true";
    button.setAttribute("aria-pressed", given ? "false" : "true");
    const undo = form.querySelector("input[name=undo]");
    if (given) undo?.remove();
    else if (!undo) form.insertAdjacentHTML("beforeend", '<input type="hidden" name="undo" value="1">');
    const key = form.querySelector("input[name=client_key]");
    const bytes = crypto.getRandomValues(new Uint8Array(12));
    if (key) key.value = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  // One tap on a cheer: sent in the background, the page stays where it is.
  feed.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!form.matches("[data-cheer]")) return;
    event.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const response = await fetch(form.action, { method: "POST", body: new FormData(form) });
      if (!response.ok) throw new Error(String(response.status));
      toggle(form);
      await catchUp();
    } catch {
      form.submit(); // let the browser send it the plain way
    } finally {
      button.disabled = false;
    }
  });
}
