// What the rider and driver apps share: their words, money and distances as each language
// writes them, calls to the public API (problem details read as such), the account key kept
// on the phone, and the service worker. No private route: a native app can do the same.

const config = JSON.parse(document.getElementById("app-config").textContent);
const common = JSON.parse(document.getElementById("common-words").textContent);
const own = JSON.parse(document.getElementById("app-words").textContent);
export const words = Object.assign({}, common, own);
export { config };
const locale = config.lang === "fr" ? "fr-CA" : "en-CA";

/** A text of the app with its `{name}` values filled in. */
export function t(key, values) {
  let text = words[key];
  if (text === undefined) throw new Error("no words for " + key);
  for (const [name, value] of Object.entries(values || {})) {
    text = text.split("{" + name + "}").join(String(value));
  }
  return text;
}

export function money(amount, currency) {
  return new Intl.NumberFormat(locale, { style: "currency", currency: currency || "CAD" })
    .format(Number(amount));
}

export function decimal(value, digits) {
  return new Intl.NumberFormat(locale, { maximumFractionDigits: digits, minimumFractionDigits: 0 })
    .format(value);
}

export function distance(metres) {
  return metres >= 1000 ? t("km", { n: decimal(metres / 1000, 1) }) : t("metres", { n: Math.round(metres) });
}

export function minutes(seconds) {
  return t("minutes", { n: Math.max(1, Math.round(seconds / 60)) });
}

export function clock(iso) {
  return new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(new Date(iso));
}

export function day(iso) {
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short", hourCycle: "h23" }).format(new Date(iso));
}

/** Great-circle distance in metres (the service's own measure of a straight line). */
export function haversine(a, b) {
  const rad = Math.PI / 180, r = 6371008.8;
  const dLat = (b.lat - a.lat) * rad, dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * r * Math.asin(Math.sqrt(h));
}

// --- the account key ----------------------------------------------------------------------

const KEY = "coop." + config.app + ".token";

export const account = {
  renewing: false,
  get token() { return localStorage.getItem(KEY); },
  set token(value) {
    if (value) localStorage.setItem(KEY, value); else localStorage.removeItem(KEY);
  },
};

// --- the API -------------------------------------------------------------------------------

export class Problem extends Error {
  constructor(status, body) {
    super((body && body.detail) || "HTTP " + status);
    this.status = status;
    this.body = body || {};
    this.type = this.body.type || "http_" + status;
  }
}

/** Calls the API; answers the JSON body, or throws a Problem (status 0: no network). */
export async function api(method, path, body, options) {
  const headers = { Accept: "application/json" };
  const token = (options && options.token) || account.token;
  if (token) headers.Authorization = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  Object.assign(headers, (options && options.headers) || {});
  let response;
  try {
    response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (error) {
    throw new Problem(0, { type: "network" });
  }
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch (error) { parsed = null; }
  if (!response.ok) throw new Problem(response.status, parsed);
  return parsed;
}

/** The words for a refusal, in the app's language. */
export function problemText(problem) {
  if (problem.status === 0) return t("network");
  const known = words.problems[problem.type];
  if (problem.type === "not_at_pickup") {
    const d = problem.body.distance_m;
    return words.problems.not_at_pickup
      .replace("{distance}", d === null || d === undefined ? "?" : distance(d))
      .replace("{radius}", distance(problem.body.arrival_radius_m || 0));
  }
  if (problem.type === "wrong_pin" || problem.type === "pin_required") {
    return known.replace("{n}", String(problem.body.attempts_left ?? "?"));
  }
  if (known) return known;
  if (problem.status === 429) return t("rate_limited", { s: problem.body.retry_after_s || 1 });
  if (problem.status === 503) return t("busy");
  return t("error", { status: problem.status });
}

/** Shows `text` in the element (an error's words; empty hides it). */
export function say(element, text) {
  element.textContent = text || "";
}

/** Tells a screen reader what changed, without moving its focus. */
export function announce(text) {
  const region = document.getElementById("announce");
  region.textContent = "";
  window.setTimeout(() => { region.textContent = text; }, 50);
}

export function show(id, visible) {
  document.getElementById(id).hidden = !visible;
}

/** Shows one view of the app and moves the focus to its title, for keyboards and readers. */
export function view(id, focus) {
  // When the app first shows something it can be used: its "time to interactive" (docs/apps.md).
  if (!performance.getEntriesByName("app-ready").length) performance.mark("app-ready");
  for (const section of document.querySelectorAll("main > .view")) {
    section.hidden = section.id !== id;
  }
  if (focus) {
    const title = document.querySelector("#" + id + " h1");
    if (title) { title.setAttribute("tabindex", "-1"); title.focus({ preventScroll: true }); }
  }
}

/** Sets the connection line at the top: empty hides it. */
export function connection(text) {
  const line = document.getElementById("connection");
  line.textContent = text || "";
  line.hidden = !text;
}

/** The account block: the name, the key on demand, and signing out everywhere. */
export function accountMenu(name, onForget) {
  document.getElementById("account-name").textContent = t("signed_in_as", { name });
  const keyLine = document.getElementById("key");
  const showKey = document.getElementById("show-key");
  if (showKey) {
    showKey.onclick = () => { keyLine.textContent = account.token; keyLine.hidden = !keyLine.hidden; };
  }
  const status = document.getElementById("account-status");
  document.getElementById("signout-all").onclick = async () => {
    // The server closes this page's socket as it revokes the old key, maybe before its answer
    // arrives: the socket waits for the replacement instead of signing the page out.
    account.renewing = true;
    try {
      const answer = await api("DELETE", "/v1/tokens");
      account.token = answer.replacement.token;
      keyLine.textContent = answer.replacement.token;
      keyLine.hidden = false;
      say(status, t("all_signed_out"));
    } catch (problem) {
      say(status, problemText(problem));
    } finally {
      account.renewing = false;
    }
  };
  document.getElementById("forget").onclick = () => {
    if (!window.confirm(t("forget_confirm"))) return;
    account.token = null;
    onForget();
  };
}

/** Renews the account's key once less than half of its life is left: keys expire
 * (COOP_TOKEN_TTL_DAYS, docs/protocol.md), and a rider's key is their only way into the account.
 * The new key is minted with the old one, which stays valid until it expires. */
export async function renewKey() {
  try {
    const current = (await api("GET", "/v1/tokens")).find((token) => token.current);
    if (!current || !current.expires_at) return;
    const born = Date.parse(current.created_at);
    const dies = Date.parse(current.expires_at);
    if (Date.now() < born + (dies - born) / 2) return;
    account.token = (await api("POST", "/v1/tokens")).token;
  } catch (problem) {
    // Tried again at the next start; the key in hand works until it expires.
  }
}

/** Installs the app's service worker (the shell offline; never an API answer). */
export function installable() {
  if ("serviceWorker" in navigator && window.isSecureContext) {
    navigator.serviceWorker.register(config.worker, { scope: config.scope }).catch(() => {});
  }
}
