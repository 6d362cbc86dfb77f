// The driver app (docs/apps.md): go available, report the phone's position at the protocol's
// pace while the app is in front (heeding `overloaded`), keep the screen on, take or decline an
// offer, drive the trip and read the fare and earnings. Only the public API and the driver's
// socket (docs/protocol.md).

import {
  account, accountMenu, announce, api, config, connection, distance, haversine, installable, minutes,
  money, renewKey,
  problemText, say, show, t, view, words,
} from "./common.js";
import { Live } from "./live.js";
import { makeMap } from "./mapview.js";
import { Safety } from "./safety.js";

// docs/protocol.md: a location "about every 4 s; more often during a trip".
const REPORT_EVERY_S = 4;
const REPORT_ON_TRIP_S = 2;
const OVERLOADED_HOLD_MS = 10000; // an `overloaded` ask holds this long after each time it comes
const OPEN = new Set(["assigned", "arrived", "in_progress"]);

const $ = (id) => document.getElementById(id);
const state = {
  me: null, terms: null, available: false, offer: null, trip: null,
  fix: null, fixProblem: "nofix", sentAt: 0, sentFix: null, askedEveryMs: 0, askedUntil: 0,
};
let live = null;
let guard = null;
let driveMap = null;
let offerMap = null;
let tripMap = null;
let wakeLock = null;
let countdown = null;

// --- signing in ------------------------------------------------------------------------------

$("signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = $("signin-key").value.trim();
  try {
    await api("GET", "/v1/drivers/me", undefined, { token: key });
    account.token = key;
    $("signin-key").value = "";
    say($("signin-error"), "");
    await begin();
  } catch (problem) {
    say($("signin-error"), problem.status === 403 ? words.problems.unauthorized : problemText(problem));
  }
});

function signedOut() {
  if (live) live.stop();
  live = null;
  account.token = null;
  state.available = false;
  connection(t("signed_out"));
  view("v-signin", true);
}

async function begin() {
  try {
    state.me = await api("GET", "/v1/drivers/me");
  } catch (problem) {
    if (problem.status === 401 || problem.status === 403) { signedOut(); return; }
    connection(problemText(problem));
    window.setTimeout(begin, 3000);
    return;
  }
  // The agreement (for an offer's earnings) and the key's renewal, together.
  const [agreement] = await Promise.all([api("GET", "/v1/agreements/current").catch(() => null), renewKey()]);
  state.terms = agreement ? agreement.terms : null;
  view("v-drive", true);
  accountMenu(state.me.name, signedOut);
  if (!driveMap) driveMap = makeMap("drive-map");
  driveMap.resize();
  watchPosition();
  live = new Live("driver", {
    frame: received,
    state: (s) => {
      connection(s === "open" ? "" : s === "replaced" ? t("replaced") : t("reconnecting"));
      if (s === "open") report(true);
    },
    signedOut,
  });
  if (!guard) {
    guard = new Safety({
      live: () => live,
      trip: () => (state.trip && OPEN.has(state.trip.status) ? state.trip : null),
      where: () => state.fix,
    });
    guard.resume();
  }
  connection(t("connecting"));
  live.start();
  duty();
}

// --- the phone's position --------------------------------------------------------------------

function watchPosition() {
  if (!("geolocation" in navigator)) { state.fixProblem = "unsupported"; return; }
  navigator.geolocation.watchPosition(
    (fix) => {
      const c = fix.coords;
      state.fix = {
        lat: c.latitude, lon: c.longitude, at: fix.timestamp || Date.now(),
        heading: Number.isFinite(c.heading) && c.heading >= 0 && c.heading <= 360 ? c.heading : null,
        speed: Number.isFinite(c.speed) && c.speed >= 0 && c.speed <= 100 ? c.speed : null,
      };
      state.fixProblem = null;
      driveMap.point("me", state.fix);
      if (!driveMap.placed) { driveMap.fit(15); driveMap.placed = true; }
      if (tripMap && state.trip) tripMap.point("car", state.fix);
      towards();
      report(false);
    },
    (error) => { state.fixProblem = error.code === 1 ? "denied" : "nofix"; reportingLine(); },
    { enableHighAccuracy: true, maximumAge: 0, timeout: 30000 },
  );
}

function onDuty() {
  return state.available || Boolean(state.trip && OPEN.has(state.trip.status));
}

function gapMs() {
  const usual = (state.trip && OPEN.has(state.trip.status) ? REPORT_ON_TRIP_S : REPORT_EVERY_S) * 1000;
  return Date.now() < state.askedUntil ? Math.max(usual, state.askedEveryMs) : usual;
}

/** Sends the newest fix when it is due (or `now`, as before a step that checks the position);
 * only the newest: an old position has no use once a newer one exists. */
function report(now) {
  reportingLine();
  if (!onDuty() || document.visibilityState !== "visible" || !state.fix || !live) return;
  if (state.fix === state.sentFix) return;
  const since = Date.now() - state.sentAt;
  if (since < (now ? Math.max(200, Date.now() < state.askedUntil ? state.askedEveryMs : 0) : gapMs())) return;
  const f = state.fix;
  const frame = { type: "location", lat: f.lat, lon: f.lon, ts: new Date(f.at).toISOString() };
  if (f.heading !== null) frame.heading = f.heading;
  if (f.speed !== null) frame.speed_mps = f.speed;
  if (live.send(frame)) { state.sentAt = Date.now(); state.sentFix = f; }
}

window.setInterval(() => report(false), 500);

function reportingLine() {
  const line = $("reporting");
  let text;
  if (!onDuty()) text = t("not_reporting_off");
  else if (document.visibilityState !== "visible") text = t("not_reporting_hidden");
  else if (state.fixProblem) text = t("not_reporting_" + state.fixProblem);
  else if (Date.now() < state.askedUntil) text = t("reporting_slow", { s: Math.round(state.askedEveryMs / 1000) });
  else text = t("reporting", { s: gapMs() / 1000 });
  if (line.textContent !== text) line.textContent = text;
  line.classList.toggle("warning", onDuty() && (document.visibilityState !== "visible" || Boolean(state.fixProblem)));
}

document.addEventListener("visibilitychange", () => { keepAwake(); report(true); });

// The screen stays on while the driver is on duty and the app is in front; the browser drops
// the lock whenever the page is hidden, so it is asked for again when the page comes back.
async function keepAwake() {
  const wanted = onDuty() && document.visibilityState === "visible";
  if (!("wakeLock" in navigator)) { $("wake").textContent = onDuty() ? t("wake_off") : ""; return; }
  if (wanted && !wakeLock) {
    try {
      wakeLock = await navigator.wakeLock.request("screen");
      wakeLock.addEventListener("release", () => { wakeLock = null; });
      $("wake").textContent = t("wake_on");
    } catch (error) {
      $("wake").textContent = t("wake_off");
    }
  } else if (!wanted && wakeLock) {
    await wakeLock.release();
    wakeLock = null;
    $("wake").textContent = "";
  }
}

// --- available or not --------------------------------------------------------------------------

function duty() {
  document.body.classList.toggle("busy", Boolean(state.offer) || !$("trip").hidden || !$("ended").hidden);
  const button = $("duty");
  button.textContent = state.available ? t("go_unavailable") : t("go_available");
  button.setAttribute("aria-pressed", String(state.available));
  $("duty-text").textContent = state.available ? t("available") : t("unavailable");
  document.body.classList.toggle("on-duty", state.available);
  reportingLine();
  keepAwake();
}

$("duty").addEventListener("click", () => {
  const wanted = !state.available;
  if (!live || !live.send({ type: "availability", available: wanted })) {
    notice(t("reconnecting"));
    return;
  }
  if (wanted) { state.sentFix = null; state.sentAt = 0; report(true); }
});

function notice(text) {
  const box = $("notices");
  const p = document.createElement("p");
  p.className = "notice";
  p.textContent = text;
  box.replaceChildren(p);
}

// --- what the service sends ----------------------------------------------------------------------

function received(frame) {
  if (guard && guard.received(frame)) return;
  switch (frame.type) {
    case "hello":
      state.available = Boolean(frame.available);
      duty();
      break;
    case "availability":
      if (frame.available && !state.available && state.waitingPlace) notice(t("admitted"));
      state.waitingPlace = null;
      state.available = Boolean(frame.available);
      duty();
      break;
    case "qualification": {
      const name = (item) => (config.lang === "fr" ? item.name_fr : item.name_en);
      const parts = [];
      if (frame.missing && frame.missing.length) parts.push(t("missing", { items: frame.missing.map(name).join(", ") }));
      if (frame.expiring && frame.expiring.length) parts.push(t("expiring", { items: frame.expiring.map(name).join(", ") }));
      if (parts.length) notice(parts.join(" "));
      break;
    }
    case "offer":
      offered(frame);
      break;
    case "offer_withdrawn":
      if (state.offer && state.offer.offer_id === frame.offer_id) {
        closeOffer();
        const key = "withdrawn_" + frame.reason;
        notice(words[key] ? t(key) : t("withdrawn_expired"));
      }
      break;
    case "trip":
      if (frame.trip) adopt(frame.trip, true);
      break;
    case "error":
      if (frame.code === "overloaded" && Number.isInteger(frame.report_every_ms)) {
        state.askedEveryMs = frame.report_every_ms;
        state.askedUntil = Date.now() + OVERLOADED_HOLD_MS;
        reportingLine();
      } else if (frame.code === "service_capacity_reached") {
        state.waitingPlace = frame.place;
        notice(t("capacity", { place: frame.place }));
      } else if (frame.code === "implausible_position") {
        notice(t("implausible"));
      }
      break;
    default:
      break;
  }
}

// --- an offer ----------------------------------------------------------------------------------

function earnings(fare) {
  // The agreement's split (docs/agreement.md): the co-op's commission is its percent of the
  // fare, at most its cap. The driver's floor can only raise this, so it is a fair lower guess.
  const terms = state.terms;
  if (!terms) return null;
  const total = Number(fare);
  let commission = Math.round(total * Number(terms.commission.percent)) / 100;
  if (terms.commission.cap !== null && terms.commission.cap !== undefined) {
    commission = Math.min(commission, Number(terms.commission.cap));
  }
  return (total - commission).toFixed(2);
}

function offered(frame) {
  state.offer = frame;
  state.offer.receivedAt = Date.now();
  const section = $("offer");
  section.hidden = false;
  show("ended", false);
  duty();
  $("offer-pickup").textContent = t("pickup_in", { distance: distance(frame.pickup_distance_m), min: minutes(frame.pickup_eta_s) });
  $("offer-fare").textContent = money(frame.fare_estimate, frame.currency);
  const mine = earnings(frame.fare_estimate);
  $("offer-earnings").textContent = mine === null ? "—" : money(mine, frame.currency);
  $("offer-why").textContent = frame.why || t("why_none");
  show("offer-accessible", Boolean(frame.wheelchair_accessible));
  if (!offerMap) offerMap = makeMap("offer-map", { zoomControl: false });
  offerMap.resize();
  offerMap.point("pickup", frame.pickup);
  offerMap.point("me", state.fix);
  offerMap.fit(16);
  // The countdown trusts the offer's `expires_at` unless the phone's clock is visibly off
  // (then the agreement's offer time, from now).
  const timeoutMs = ((state.terms && state.terms.dispatch.offer_timeout_s) || 15) * 1000;
  let leftMs = Date.parse(frame.expires_at) - Date.now();
  if (!(leftMs > 0 && leftMs <= timeoutMs + 2000)) leftMs = timeoutMs;
  state.offer.deadline = Date.now() + leftMs;
  state.offer.totalMs = leftMs;
  window.clearInterval(countdown);
  countdown = window.setInterval(tick, 250);
  tick();
  $("offer-title").focus();
  announce(t("pickup_in", { distance: distance(frame.pickup_distance_m), min: minutes(frame.pickup_eta_s) }));
  navigator.vibrate && navigator.vibrate([200, 100, 200]);
}

function tick() {
  const offer = state.offer;
  if (!offer) return;
  const leftMs = Math.max(0, offer.deadline - Date.now());
  $("offer-progress").value = leftMs / offer.totalMs;
  $("offer-left").textContent = t("left", { s: Math.ceil(leftMs / 1000) });
  if (leftMs === 0) { closeOffer(); notice(t("withdrawn_expired")); }
}

function closeOffer() {
  window.clearInterval(countdown);
  state.offer = null;
  show("offer", false);
  duty();
}

$("accept").addEventListener("click", async () => {
  const offer = state.offer;
  if (!offer) return;
  try {
    const trip = await api("POST", `/v1/offers/${offer.offer_id}/accept`);
    closeOffer();
    adopt(trip, true);
  } catch (problem) {
    closeOffer();
    notice(problemText(problem));
  }
});

$("decline").addEventListener("click", async () => {
  const offer = state.offer;
  if (!offer) return;
  closeOffer();
  try {
    await api("POST", `/v1/offers/${offer.offer_id}/decline`);
    notice(t("declined"));
  } catch (problem) {
    notice(problemText(problem));
  }
});

// --- the trip ----------------------------------------------------------------------------------

/** How far the phone is from where the trip goes next (a straight line), under its title. */
function towards() {
  const trip = state.trip;
  const line = $("trip-detail");
  if (!trip || !OPEN.has(trip.status) || trip.status === "arrived" || !state.fix) { line.textContent = ""; return; }
  const target = trip.status === "in_progress" ? trip.dropoff : trip.pickup;
  line.textContent = t("straight", { distance: distance(haversine(state.fix, target)) });
}

function adopt(trip, changed) {
  const current = state.trip;
  if (current && current.id !== trip.id && !OPEN.has(trip.status)) return; // an earlier trip's news
  if (current && current.id === trip.id && current.status === trip.status) changed = false;
  state.trip = trip;
  if (!OPEN.has(trip.status)) { ended(trip, changed); return; }
  show("trip", true);
  show("ended", false);
  const firstName = trip.rider && trip.rider.first_name;
  let title;
  let step;
  if (trip.status === "assigned") {
    title = firstName ? t("to_pickup_name", { name: firstName }) : t("to_pickup");
    step = t("step_arrived");
  } else if (trip.status === "arrived") {
    title = t("at_pickup");
    step = t("step_start");
  } else {
    title = t("on_trip");
    step = t("step_complete");
  }
  $("trip-title").textContent = title;
  $("step").textContent = step;
  $("step").dataset.step = { assigned: "arrived", arrived: "start", in_progress: "complete" }[trip.status];
  show("cancel-trip", trip.status !== "in_progress");
  // Where the API asks for the rider's PIN to start, the field shows.
  show("pin-field", trip.status === "arrived" && Boolean(trip.pin_required));
  if (!current || current.id !== trip.id) $("pin-input").value = "";
  if (guard) guard.refresh();
  // Waiting at the pickup there is nowhere to go: the links come back once the ride starts.
  show("nav-links", trip.status !== "arrived");
  const target = trip.status === "in_progress" ? trip.dropoff : trip.pickup;
  $("nav-geo").href = `geo:${target.lat},${target.lon}?q=${target.lat},${target.lon}`;
  $("nav-osm").href = state.fix
    ? `https://www.openstreetmap.org/directions?engine=fossgis_osrm_car&route=${state.fix.lat},${state.fix.lon};${target.lat},${target.lon}`
    : `https://www.openstreetmap.org/?mlat=${target.lat}&mlon=${target.lon}#map=17/${target.lat}/${target.lon}`;
  if (!tripMap) tripMap = makeMap("trip-map");
  tripMap.resize();
  tripMap.point("pickup", trip.pickup);
  tripMap.point("dropoff", trip.dropoff);
  tripMap.point("car", state.fix);
  if (changed) tripMap.fit(16);
  say($("trip-error"), "");
  towards();
  duty();
  if (changed) { announce(title); $("trip-title").focus(); }
}

$("step").addEventListener("click", async () => {
  const trip = state.trip;
  const step = $("step").dataset.step;
  if (!trip || !step) return;
  // The arrival is checked against the newest position, and the meter ends at the last one.
  report(true);
  const button = $("step");
  button.disabled = true;
  try {
    const body = step === "start" && trip.pin_required ? { pin: $("pin-input").value.trim() } : undefined;
    adopt(await api("POST", `/v1/trips/${trip.id}/${step}`, body), true);
  } catch (problem) {
    say($("trip-error"), problemText(problem));
    if (problem.type === "invalid_transition") {
      try { adopt(await api("GET", "/v1/trips/" + trip.id), true); } catch (e) { /* the socket brings it */ }
    }
  } finally {
    button.disabled = false;
  }
});

$("cancel-trip").addEventListener("click", async () => {
  if (!state.trip || !window.confirm(t("cancel_confirm"))) return;
  try {
    adopt(await api("POST", `/v1/trips/${state.trip.id}/cancel`, {}), true);
  } catch (problem) {
    say($("trip-error"), problemText(problem));
  }
});

function ended(trip, changed) {
  show("trip", false);
  if (guard) guard.refresh();
  const box = $("ended-facts");
  const facts = document.createElement("dl");
  facts.className = "facts";
  box.replaceChildren(facts);
  const line = (text) => { const p = document.createElement("p"); p.textContent = text; box.append(p); };
  const fact = (label, value) => {
    const div = document.createElement("div");
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.textContent = value;
    div.append(dt, dd);
    facts.append(div);
  };
  let title;
  if (trip.status === "completed" && trip.fare) {
    title = t("completed");
    fact(t("fare"), money(trip.fare.total, trip.fare.currency));
    fact(t("earnings"), money(trip.fare.driver_earnings, trip.fare.currency));
    fact(t("commission"), money(trip.fare.coop_commission, trip.fare.currency));
    fact(t("distance_time"), `${distance(trip.fare.distance_m)} · ${minutes(trip.fare.duration_s)}`);
  } else {
    title = t("cancelled");
    facts.remove();
    line(trip.cancelled_by === "driver" ? t("cancelled_you") : t("cancelled_rider"));
    if (trip.cancellation_fee && Number(trip.cancellation_fee) > 0) {
      line(t("fee_to_you", { fee: money(trip.cancellation_fee, trip.quote.currency) }));
    }
  }
  $("ended-title").textContent = title;
  show("ended", true);
  duty();
  if (changed) { announce(title); $("ended-title").focus(); }
}

$("ended-ok").addEventListener("click", () => {
  show("ended", false);
  state.trip = null;
  duty();
  $("duty").focus();
});

// --- start -------------------------------------------------------------------------------------

installable();
if (account.token) begin(); else view("v-signin", false);
document.body.dataset.ready = "true";
