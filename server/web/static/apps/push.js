// The "Notify me" switch of both apps (docs/apps.md, docs/push.md): off until the person turns
// it on; then the browser's permission, a Web Push subscription with the service's VAPID key and
// the device registered with the account (`POST /v1/devices`). Off unsubscribes and removes the
// device. The service worker (sw.js) shows the pushes and sends an offer's receipt; it reads the
// account's key, the device and its language from IndexedDB, which this module keeps in step.

import { account, api, config, problemText } from "./common.js";

const DB = "coop-push";
const STORE = "apps";
const KEY_CHECK_MS = 2000;
const READY_WAIT_MS = 10000;

const $ = (id) => document.getElementById(id);
const toggle = $("push-switch");
const status = $("push-status");
const words = JSON.parse($("push-words").textContent);

// --- what the worker reads ----------------------------------------------------------------

function db() {
  return new Promise((resolve, reject) => {
    const opening = indexedDB.open(DB, 1);
    opening.onupgradeneeded = () => opening.result.createObjectStore(STORE);
    opening.onsuccess = () => resolve(opening.result);
    opening.onerror = () => reject(opening.error);
  });
}

async function stored(name) {
  const handle = await db();
  return new Promise((resolve, reject) => {
    const reading = handle.transaction(STORE).objectStore(STORE).get(name);
    reading.onsuccess = () => resolve(reading.result);
    reading.onerror = () => reject(reading.error);
  });
}

async function store(name, value) {
  const handle = await db();
  return new Promise((resolve, reject) => {
    const writing = handle.transaction(STORE, "readwrite");
    if (value === undefined) writing.objectStore(STORE).delete(name);
    else writing.objectStore(STORE).put(value, name);
    writing.oncomplete = () => resolve();
    writing.onerror = () => reject(writing.error);
  });
}

// --- what the browser can do ----------------------------------------------------------------

function unsupported() {
  if (!window.isSecureContext || !("serviceWorker" in navigator)) return words.no_worker;
  if (!("PushManager" in window) || !("Notification" in window)) return words.no_push;
  return null;
}

async function registration() {
  const registered = await navigator.serviceWorker.register(config.worker, { scope: config.scope });
  if (registered.active) return registered;
  // A first visit: the worker is still installing; push needs it active.
  return Promise.race([
    navigator.serviceWorker.ready,
    new Promise((resolve, reject) => window.setTimeout(() => reject(new Error("worker")), READY_WAIT_MS)),
  ]);
}

function keyBytes(base64url) {
  const padded = base64url.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (base64url.length % 4)) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

function sameKey(subscription, key) {
  const held = subscription.options && subscription.options.applicationServerKey;
  if (!held) return true; // the browser does not say: keep it (the service drops it if refused)
  const bytes = new Uint8Array(held);
  return bytes.length === key.length && bytes.every((byte, i) => byte === key[i]);
}

function say(text, ok) {
  status.textContent = text || "";
  status.classList.toggle("error", Boolean(text) && !ok);
}

// --- on and off ---------------------------------------------------------------------------------

async function register(subscription) {
  const json = subscription.toJSON();
  const device = await api("POST", "/v1/devices", {
    endpoint: json.endpoint, keys: json.keys, platform: "web", language: config.lang,
  });
  await store(config.app, { token: account.token, device_id: device.id, language: device.language });
  return device;
}

async function turnOn() {
  const cannot = unsupported();
  if (cannot) { say(cannot); return false; }
  const permission = await Notification.requestPermission();
  if (permission !== "granted") { say(permission === "denied" ? words.denied : words.dismissed); return false; }
  let worker;
  try { worker = await registration(); } catch (error) { say(words.no_worker); return false; }
  let subscription;
  try {
    const key = keyBytes((await api("GET", "/v1/push/key")).public_key);
    subscription = await worker.pushManager.getSubscription();
    if (subscription && !sameKey(subscription, key)) {
      // Subscribed under a key the service no longer signs with: its pushes would be refused.
      await subscription.unsubscribe();
      subscription = null;
    }
    subscription = subscription
      || await worker.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  } catch (error) {
    if (error && error.status !== undefined) { say(problemText(error)); return false; }
    // Chromium without a push service (and some privacy browsers) refuse here: AbortError.
    say(error && error.name === "NotAllowedError" ? words.denied : words.no_service);
    return false;
  }
  try {
    await register(subscription);
  } catch (problem) {
    await subscription.unsubscribe().catch(() => {});
    say(problem.type === "too_many_devices" ? words.too_many : problemText(problem));
    return false;
  }
  say(words.on, true);
  return true;
}

async function turnOff() {
  const record = (await stored(config.app).catch(() => null)) || {};
  try {
    const worker = await navigator.serviceWorker.getRegistration(config.scope);
    const subscription = worker && await worker.pushManager.getSubscription();
    if (subscription) await subscription.unsubscribe();
  } catch (error) {
    // The subscription is the browser's; the device below is what the service pushes to.
  }
  const token = account.token || record.token;
  if (record.device_id && token) {
    try {
      // With the key it was registered with: forgetting the key on this phone still removes it.
      await api("DELETE", `/v1/devices/${record.device_id}`, undefined, { token });
    } catch (problem) {
      if (problem.status !== 404) { say(problemText(problem)); }
    }
  }
  await store(config.app, undefined).catch(() => {});
  if (!status.classList.contains("error")) say(words.off, true);
}

toggle.addEventListener("change", async () => {
  toggle.disabled = true;
  say(words.working, true);
  try {
    toggle.checked = toggle.checked ? await turnOn() : (await turnOff(), false);
  } catch (error) {
    // Anything unforeseen (storage refused, say): shown as off, never as on when it is not.
    toggle.checked = false;
    say(error && error.status !== undefined ? problemText(error) : words.no_service);
  } finally {
    toggle.disabled = false;
  }
});

// --- keeping the worker's copy right ------------------------------------------------------------

// The page changes its key in several places (renewal, signing out everywhere, forgetting it);
// reading one localStorage entry every two seconds keeps the worker's copy in step with all.
let keySeen = account.token;

async function followKey() {
  const token = account.token;
  if (token === keySeen) return;
  keySeen = token;
  const record = await stored(config.app).catch(() => null);
  if (!record) return;
  if (!token) {
    // Forgotten on this phone: nothing more is shown or received for the account here.
    toggle.checked = false;
    await turnOff();
    return;
  }
  // A new key: the old one's devices go with it when it is revoked, so register again with
  // this one (the same endpoint keeps its device).
  try {
    const worker = await navigator.serviceWorker.getRegistration(config.scope);
    const subscription = worker && await worker.pushManager.getSubscription();
    if (subscription) await register(subscription);
    else await store(config.app, { ...record, token });
  } catch (problem) {
    await store(config.app, { ...record, token }).catch(() => {});
  }
}

function opened(message) {
  if (!message || message.type !== "push-opened" || !message.receipt) return;
  // The offer was gone by the time it was opened: say so, as the card would.
  if (message.kind === "offer" && message.receipt.status !== "pending") say(words.offer_gone);
}

async function start() {
  const cannot = unsupported();
  if (cannot) {
    // Nothing this browser can do: the switch stays off and cannot be turned on.
    say(cannot);
    toggle.disabled = true;
    return;
  }
  navigator.serviceWorker.addEventListener("message", (event) => opened(event.data));
  const note = await stored(config.app + ".opened").catch(() => null);
  if (note) {
    await store(config.app + ".opened", undefined).catch(() => {});
    if (Date.now() - note.at < 60000) opened(note);
  }
  const record = await stored(config.app).catch(() => null);
  const worker = await navigator.serviceWorker.getRegistration(config.scope).catch(() => null);
  const subscription = worker && await worker.pushManager.getSubscription().catch(() => null);
  const on = Boolean(record && record.device_id && subscription && Notification.permission === "granted");
  toggle.checked = on;
  if (!on) {
    if (record) await store(config.app, undefined).catch(() => {});
    if (Notification.permission === "denied") say(words.denied);
  } else if (account.token && (record.language !== config.lang || record.token !== account.token)) {
    // The app's language changed since, or the key did: the device follows.
    register(subscription).catch(() => {});
  }
  window.setInterval(() => { followKey().catch(() => {}); }, KEY_CHECK_MS);
}

start().catch(() => {});
