// The app's service worker (prefixed by the server with APP, VERSION, SHELL: the shell's files,
// and WORDS: the notifications' words in each language). It keeps the shell only, so the app
// opens without the network and says so; it never stores an API answer (personal, and stale the
// moment it is stored) nor anything else. It shows pushes (docs/push.md) and, when an offer's
// notification is opened, sends the push receipt.

const CACHE = `coop-${APP}-${VERSION}`;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names
        .filter((name) => name.startsWith(`coop-${APP}-`) && name !== CACHE)
        .map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && url.pathname === `/${APP}`) {
    // The page from the network (its language, a new release); the kept shell when offline.
    event.respondWith(
      fetch(request)
        .then((response) => {
          if (response.ok) {
            const copy = response.clone();
            caches.open(CACHE).then((cache) => cache.put(`/${APP}`, copy));
          }
          return response;
        })
        .catch(() => caches.match(`/${APP}`, { ignoreVary: true })),
    );
    return;
  }
  if (SHELL.includes(url.pathname) && url.search === "") {
    event.respondWith(caches.match(url.pathname).then((kept) => kept || fetch(request)));
  }
  // Anything else (the API above all) goes to the network untouched.
});

// --- push (docs/push.md) ---------------------------------------------------------------------

// What the page left for the worker (push.js): the account's key, the device and the language
// it was registered in. IndexedDB, because the worker has no localStorage and must act with no
// page open: the receipt goes out before the app has even loaded.
const PUSH_DB = "coop-push";
const PUSH_STORE = "apps";

function pushDb() {
  return new Promise((resolve, reject) => {
    const opening = indexedDB.open(PUSH_DB, 1);
    opening.onupgradeneeded = () => opening.result.createObjectStore(PUSH_STORE);
    opening.onsuccess = () => resolve(opening.result);
    opening.onerror = () => reject(opening.error);
  });
}

async function pushRecord() {
  try {
    const db = await pushDb();
    return await new Promise((resolve, reject) => {
      const reading = db.transaction(PUSH_STORE).objectStore(PUSH_STORE).get(APP);
      reading.onsuccess = () => resolve(reading.result || {});
      reading.onerror = () => reject(reading.error);
    });
  } catch (error) {
    return {};
  }
}

async function leaveNote(message) {
  try {
    const db = await pushDb();
    await new Promise((resolve, reject) => {
      const writing = db.transaction(PUSH_STORE, "readwrite");
      writing.objectStore(PUSH_STORE).put({ ...message, at: Date.now() }, APP + ".opened");
      writing.oncomplete = resolve;
      writing.onerror = () => reject(writing.error);
    });
  } catch (error) {
    // Without the note the app still opens; the socket shows the offer if it is open.
  }
}

function fill(text, values) {
  for (const [name, value] of Object.entries(values)) text = text.split("{" + name + "}").join(String(value));
  return text;
}

/** The notification for a decrypted payload, in `language`: its title and options. */
function notificationFor(data, language) {
  const w = WORDS[language] || WORDS.fr;
  const locale = language === "en" ? "en-CA" : "fr-CA";
  const app = `/${APP}`;
  const kind = data.kind;
  if (kind === "offer") {
    const lines = [];
    if (typeof data.pickup_eta_s === "number") {
      const min = fill(w.minutes, { n: Math.max(1, Math.round(data.pickup_eta_s / 60)) });
      const metres = Number(data.pickup_distance_m || 0);
      const away = metres >= 1000
        ? fill(w.km, { n: new Intl.NumberFormat(locale, { maximumFractionDigits: 1 }).format(metres / 1000) })
        : fill(w.metres, { n: Math.round(metres) });
      lines.push(fill(w.offer_pickup, { min, distance: away }));
    }
    if (data.fare_estimate !== undefined && data.fare_estimate !== null) {
      const fare = new Intl.NumberFormat(locale, { style: "currency", currency: data.currency || "CAD" })
        .format(Number(data.fare_estimate));
      lines.push(fill(w.offer_fare, { fare }));
    }
    if (data.wheelchair_accessible) lines.push(w.offer_accessible);
    lines.push(w.offer_open);
    // One tag for every offer: a newer offer replaces the older one on the screen, as the push
    // service's topic replaces one not yet delivered.
    return [w.offer_title, { body: lines.join(" "), tag: "offer", renotify: true, requireInteraction: true, url: app }];
  }
  if (kind === "trip") {
    const title = w["trip_" + data.status] || w.trip_other;
    const body = data.status === "cancelled" ? w.trip_cancelled_body : w.trip_body;
    return [title, { body, tag: "trip-" + data.trip_id, renotify: true, url: app }];
  }
  if (kind === "safety") {
    const title = w["safety_" + data.status] || w.other_title;
    // Every status of one alert replaces the last: the screen says where it stands now.
    return [title, {
      body: w.safety_body, tag: "sos-" + data.alert_id, renotify: true,
      requireInteraction: data.status !== "resolved", url: app,
    }];
  }
  if (kind === "appeal") return [w.appeal_title, { body: w.appeal_body, tag: "appeal-" + data.appeal_id, url: "/me" }];
  if (kind === "vote") {
    const url = /^[0-9a-f-]{36}$/.test(String(data.proposal_id)) ? `/proposals/${data.proposal_id}` : "/proposals";
    return [w.vote_title, { body: w.vote_body, tag: "vote-" + data.proposal_id, url }];
  }
  return [w.other_title, { body: w.other_body, tag: "other", url: app }];
}

/** Shows the push: every push must show something (`userVisibleOnly`), even one it cannot read. */
async function showPush(data) {
  const record = await pushRecord();
  const [title, options] = notificationFor(data, record.language || "fr");
  const { url, ...shown } = options;
  await self.registration.showNotification(title, {
    ...shown,
    lang: record.language || "fr",
    icon: `/static/apps/${APP}-192.png`,
    data: { ...data, url },
  });
}

self.addEventListener("push", (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (error) { data = {}; }
  event.waitUntil(showPush(data && typeof data === "object" ? data : {}));
});

/** The push receipt (docs/protocol.md): the offer counts as delivered, so letting it run out is
 * no longer "undelivered". The key goes in the Authorization header, never in a URL. */
async function sendReceipt(offerId) {
  const record = await pushRecord();
  if (!record.token || !/^[0-9a-f-]{36}$/.test(String(offerId))) return null;
  try {
    const response = await fetch(`/v1/offers/${offerId}/received`, {
      method: "POST", headers: { Authorization: "Bearer " + record.token, Accept: "application/json" },
      cache: "no-store",
    });
    return response.ok ? await response.json() : { status: null, problem: response.status };
  } catch (error) {
    return null; // no network: the app's socket shows the offer if it is still open
  }
}

/** What opening a notification does: the receipt first (for an offer), then the app, told why. */
async function openFrom(data) {
  const receipt = data.kind === "offer" ? await sendReceipt(data.offer_id) : null;
  const target = new URL(data.url || `/${APP}`, self.location.origin);
  const message = { type: "push-opened", kind: data.kind || null, receipt };
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const open = windows.find((client) => new URL(client.url).pathname === target.pathname);
  if (open) {
    open.postMessage(message);
    try { await open.focus(); } catch (error) { /* only a click may focus; the message is there */ }
    return message;
  }
  // A new window cannot be told by message before it listens: it reads this on starting.
  await leaveNote(message);
  try { await self.clients.openWindow(target.href); } catch (error) { /* no click, no window */ }
  return message;
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(openFrom(event.notification.data || {}));
});
