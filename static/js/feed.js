// The live feed: new posts, cheers and comments arrive without a reload. Every change carries
// the cohort's next number; when a number is skipped (or the socket was away), the page asks the
// server for everything after the last number it saw, so a missed message loses nothing.
// What arrives is said politely to screen readers (#feed-news), in the page's words.

import { countOf, counted, fill, number } from "./words.js";

export function follow(socket) {
  const feed = document.querySelector("[data-feed]");
  if (!feed) return;
  const cohort = feed.dataset.feed;
  const single = feed.dataset.single; // an item's own page follows that item only
  let last = Number(feed.dataset.lastSeq || 0);
  let running = null;
  let again = false;
  const news = document.getElementById("feed-news");
  const mine = new Map(); // "item:kind" -> until when: a cheer this page just gave is no news here
  const authorOf = (id) => document.getElementById(`item-${id}`)?.dataset.author || "";

  function tell(text) {
    if (news && text) news.textContent = text;
  }

  // Puts a post from the server in its place; true when it is new on this page.
  function place(article) {
    const current = document.getElementById(article.id);
    if (current) {
      if (!current.contains(document.activeElement)) current.replaceWith(article);
    } else if (!single) {
      feed.querySelector(".empty")?.remove();
      feed.prepend(article);
      return true;
    }
    return false;
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
    // New posts are the ones newer than any here (a change to an older post also comes back).
    const newest = Math.max(0, ...[...feed.querySelectorAll("article[data-item]")]
      .map((article) => Number(article.dataset.item)));
    const fresh = [...box.querySelectorAll("article[data-item]")].reverse()
      .filter((article) => place(article) && Number(article.dataset.item) > newest);
    if (fresh.length === 1) tell(fill(news?.dataset.posted, { name: fresh[0].dataset.author }));
    else if (fresh.length > 1 && news) tell(counted(news, "posts", fresh.length));
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
    let more = false;
    for (const count of article.querySelectorAll("[data-count]")) {
      const value = data.cheers[count.dataset.count] || 0;
      const given = (mine.get(`${data.item_id}:${count.dataset.count}`) || 0) > Date.now();
      if (value > countOf(count) && !given) more = true;
      count.dataset.value = String(value);
      count.textContent = value ? number(value) : "";
    }
    if (more) tell(fill(news?.dataset.cheered, { name: article.dataset.author }));
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
    const said = data.kind === "comment" && !single
      ? fill(news?.dataset.commented, { name: authorOf(data.item_id) }) : "";
    catchUp().then(() => tell(said));
  });
  socket.on("connect", () => { catchUp(); }); // after a reconnect: whatever was missed
  // The server lost its message queue for a while: ask for what was missed, at a random moment
  // within the seconds it gives, so that its pages do not all ask at once.
  socket.on("catch_up", (data) => {
    setTimeout(catchUp, Math.random() * 1000 * (Number(data?.within) || 1));
  });

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

  // One tap on a cheer: sent in the background, the page stays where it is. While it goes, the
  // button says it is busy (aria-disabled) but keeps the focus: a disabled button would drop it.
  feed.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!form.matches("[data-cheer]")) return;
    event.preventDefault();
    const button = form.querySelector("button");
    if (button.getAttribute("aria-disabled") === "true") return; // one send at a time
    const kind = form.querySelector("input[name=kind]")?.value;
    mine.set(`${form.closest("[data-item]")?.dataset.item}:${kind}`, Date.now() + 10000);
    button.setAttribute("aria-disabled", "true");
    try {
      const response = await fetch(form.action, { method: "POST", body: new FormData(form) });
      if (!response.ok) throw new Error(String(response.status));
      toggle(form);
      await catchUp();
    } catch {
      form.submit(); // let the browser send it the plain way
    } finally {
      button.removeAttribute("aria-disabled");
    }
  });
}
