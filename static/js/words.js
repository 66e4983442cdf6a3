// Words, numbers and times that scripts write, in the page's language. The words come from the
// page itself (data attributes the server wrote in the reader's language, with {blanks} to fill);
// numbers and times go through Intl with the page's lang, as the server's own figures do.

const lang = () => document.documentElement.lang || "en";

export function number(value) {
  return new Intl.NumberFormat(lang()).format(value);
}

// A count that may already be on the page: the number kept beside it, else its digits.
export function countOf(el) {
  if (!el) return 0;
  if (el.dataset.value !== undefined) return Number(el.dataset.value) || 0;
  return Number(el.textContent.replace(/\D/g, "")) || 0;
}

export function showCount(el, value) {
  el.dataset.value = String(value);
  el.textContent = number(value);
}

// "{name} cheered" with its blanks filled in; numbers written the page's way.
export function fill(template, values = {}) {
  return (template || "").replace(/\{(\w+)\}/g, (blank, key) => {
    if (!(key in values)) return blank;
    return typeof values[key] === "number" ? number(values[key]) : String(values[key]);
  });
}

// The server's singular and plural (data-KEY-one, data-KEY-other) for a count, filled in.
export function counted(el, key, count, values = {}) {
  const form = new Intl.PluralRules(lang()).select(count) === "one" ? "One" : "Other";
  return fill(el.dataset[`${key}${form}`] ?? el.dataset[`${key}Other`], { ...values, count });
}

// "3 hours ago" / "hace 3 horas", the way the server writes it (Babel's format_timedelta: the
// largest unit that reaches 0.85 of one, rounded; never less than a second).
const UNITS = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400],
  ["hour", 3600], ["minute", 60], ["second", 1]];

export function ago(when, now = Date.now()) {
  const seconds = Math.floor((when.getTime() - now) / 1000);
  const words = new Intl.RelativeTimeFormat(lang(), { numeric: "always" });
  for (const [unit, size] of UNITS) {
    const value = Math.abs(seconds) / size;
    if (value >= 0.85 || unit === "second") {
      const rounded = Math.round(unit === "second" && value > 0 ? Math.max(1, value) : value);
      return words.format(seconds < 0 ? -rounded : rounded, unit);
    }
  }
  return "";
}

// Times written as "… ago" stay true while the page is open, when the phone wakes up, and when
// the page comes back from the browser's history.
export function keepTimesFresh() {
  const refresh = () => {
    const now = Date.now();
    for (const time of document.querySelectorAll("time[data-ago]")) {
      const when = new Date(time.dateTime);
      if (!Number.isNaN(when.getTime())) time.textContent = ago(when, now);
    }
  };
  setInterval(refresh, 30000);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refresh();
  });
  addEventListener("pageshow", (event) => { if (event.persisted) refresh(); });
  return refresh;
}
