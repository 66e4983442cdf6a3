// While a member writes a post or comment: words that may signal a crisis bring up the crisis
// lines at once, and talk of changing medication a gentle note. Checked a moment after typing
// stops; the server checks again when the text is sent.

const csrf = document.querySelector("meta[name=csrf-token]")?.content || "";

for (const area of document.querySelectorAll("textarea[data-screen]")) {
  const form = area.closest("form");
  const crisis = form?.querySelector("[data-crisis-box]");
  const care = form?.querySelector("[data-care-note]");
  let timer = null;
  let asked = "";
  area.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const text = area.value.trim();
      if (text === asked) return;
      asked = text;
      if (!text) { if (crisis) crisis.hidden = true; if (care) care.hidden = true; return; }
      try {
        const response = await fetch("/api/v1/safety/screen", {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
          body: JSON.stringify({ text }),
        });
        if (!response.ok) return;
        const verdict = await response.json();
        if (crisis) crisis.hidden = !verdict.crisis;
        if (care) care.hidden = !verdict.medication;
      } catch { /* offline: the server checks again on sending */ }
    }, 500);
  });
}
