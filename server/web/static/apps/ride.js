// The rider app (docs/apps.md): open an account, place the pickup and the destination, read the
// price and its maximum, consent and request, follow the trip over the socket, cancel (the fee
// rule shown first), read the receipt and rate; past trips and their receipts. Everything comes
// from the public API (docs/protocol.md).

import {
  account, accountMenu, announce, api, clock, config, connection, day, distance, haversine,
  installable, minutes, money, problemText, renewKey, say, show, t, view, words,
} from "./common.js";
import { Live } from "./live.js";
import { makeMap } from "./mapview.js";
import { Safety } from "./safety.js";

const OPEN = new Set(["requested", "assigned", "arrived", "in_progress"]);
const CANCELLABLE = new Set(["requested", "assigned", "arrived"]);
// The protocol gives the rider no ETA: the app estimates it as the service does before it has
// learned its speeds (docs/protocol.md, "Trips"): the straight line × 1.3 at 25 km/h.
const DETOUR = 1.3;
const PRIOR_SPEED_MPS = 25 / 3.6;

const $ = (id) => document.getElementById(id);
const state = { here: null, me: null, terms: null, pickup: null, dropoff: null, quote: null, trip: null, car: null, tags: null };
let planMap = null;
let tripMap = null;
let live = null;
let guard = null;
// The driver's photo is fetched with the rider's key (an <img src> cannot send it) and shown
// through a blob URL, kept while its address (whose `v` changes with the photo) stays the same.
const photo = { url: null, blob: null };

function randomKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function place(position) {
  return t("pinned", { lat: position.lat.toFixed(5), lon: position.lon.toFixed(5) });
}

// --- signing up and in -------------------------------------------------------------------------

$("signup").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = $("signup-name").value.trim();
  const first = $("signup-first").value.trim();
  if (!name) { say($("signup-error"), words.problems.validation_error); $("signup-name").focus(); return; }
  try {
    const body = first ? { name, first_name: first } : { name };
    const answer = await api("POST", "/v1/riders", body, { token: null });
    account.token = answer.token;
    say($("signup-error"), "");
    await begin();
  } catch (problem) {
    say($("signup-error"), problemText(problem));
  }
});

$("signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = $("signin-key").value.trim();
  try {
    await api("GET", "/v1/riders/me", undefined, { token: key });
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
  show("safety", false);
  connection(t("signed_out"));
  show("account-menu", false);
  view("v-welcome", true);
}

async function begin() {
  let me;
  try {
    me = await api("GET", "/v1/riders/me");
  } catch (problem) {
    if (problem.status === 401 || problem.status === 403) { signedOut(); return; }
    connection(problemText(problem));
    window.setTimeout(begin, 3000);
    return;
  }
  state.me = me;
  renewKey(); // beside the first view: the key in hand works until it expires
  connection("");
  show("account-menu", true);
  accountMenu(me.name, signedOut);
  api("GET", "/v1/agreements/current").then((agreement) => { state.terms = agreement.terms; fillCancelRule(); }, () => {});
  planning();
  live = new Live("rider", {
    frame: received,
    state: (s) => connection(s === "open" ? "" : s === "replaced" ? t("replaced") : t("reconnecting")),
    signedOut,
  });
  if (!guard) {
    // Where the phone is, never the pickup pin: the rider may have placed it elsewhere.
    guard = new Safety({ live: () => live, trip: openTrip, where: () => state.here, always: true });
    guard.resume();
  }
  guard.refresh();
  connection(t("connecting"));
  live.start();
}

function openTrip() {
  return state.trip && OPEN.has(state.trip.status) ? state.trip : null;
}

// --- the pickup and the destination ------------------------------------------------------------

function planning() {
  view("v-plan", true);
  if (!planMap) {
    planMap = makeMap("plan-map");
    planMap.map.on("click", (event) => pin({ lat: event.latlng.lat, lon: event.latlng.lng }));
    locate();
  }
  planMap.resize();
}

function pinChoice() {
  return document.querySelector('input[name="pin"]:checked').value;
}

function setPin(which, position, label) {
  state[which] = position;
  planMap.point(which, position);
  $(which + "-text").textContent = label || place(position);
  state.quote = null;
}

function pin(position) {
  const which = pinChoice();
  setPin(which, position);
  say($("plan-error"), "");
  announce($(which + "-text").textContent);
  if (which === "pickup" && !state.dropoff) {
    document.querySelector('input[name="pin"][value="dropoff"]').checked = true;
  }
}

$("pin-centre").addEventListener("click", () => {
  const centre = planMap.map.getCenter();
  pin({ lat: centre.lat, lon: centre.lng });
});

function locate() {
  if (!("geolocation" in navigator)) { geoRefused(); return; }
  say($("geo-status"), t("geo_wait"));
  navigator.geolocation.getCurrentPosition(
    (fix) => {
      const here = { lat: fix.coords.latitude, lon: fix.coords.longitude };
      state.here = here;
      setPin("pickup", here, t("here"));
      say($("geo-status"), t("geo_ok"));
      planMap.fit(15);
    },
    geoRefused,
    { enableHighAccuracy: true, timeout: 15000, maximumAge: 30000 },
  );
}

function geoRefused() {
  say($("geo-status"), t("geo_denied"));
  if (!state.pickup) document.querySelector('input[name="pin"][value="pickup"]').checked = true;
}

$("get-quote").addEventListener("click", async () => {
  say($("plan-error"), "");
  if (!state.pickup || !state.dropoff) { say($("plan-error"), t("need_both")); return; }
  try {
    state.quote = await api("POST", "/v1/quotes", {
      pickup: state.pickup, dropoff: state.dropoff, wheelchair_accessible: $("wheelchair").checked,
    });
    showQuote();
  } catch (problem) {
    say($("plan-error"), problemText(problem));
  }
});

// --- the price, and the rider's consent --------------------------------------------------------

function lineName(line) {
  if (line.kind === "fare_estimate") return t("line_fare_estimate");
  const name = (config.lang === "fr" && line.name_fr) || line.name || t("line_dues");
  return line.percent ? `${name} (${line.percent} %)` : name;
}

function showQuote() {
  const q = state.quote;
  const body = document.querySelector("#quote-lines tbody");
  body.replaceChildren();
  const row = (label, amount, strong) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = label;
    const td = document.createElement("td");
    td.textContent = money(amount, q.currency);
    if (strong) tr.className = "total";
    tr.append(th, td);
    body.append(tr);
  };
  for (const line of q.lines) row(lineName(line), line.amount);
  row(t("estimated_total"), q.estimated_total, true);
  $("quote-max").textContent = money(q.max_total, q.currency);
  $("quote-consent").textContent = t("consent", { max: money(q.max_total, q.currency) });
  $("quote-route").textContent = t("route", { km: distance(q.distance_m), min: minutes(q.duration_s) });
  $("quote-expiry").textContent = t("expiry", { time: clock(q.expires_at) });
  $("request").textContent = t("request", { max: money(q.max_total, q.currency) });
  $("request").dataset.key = randomKey();
  fillCancelRule();
  say($("quote-error"), "");
  view("v-quote", true);
}

function cancelRule() {
  if (!state.terms) return "";
  const c = state.terms.cancellation;
  return t("cancel_rule", { free: minutes(c.free_period_s), fee: money(c.fee, state.terms.currency) });
}

function fillCancelRule() {
  $("quote-cancel-rule").textContent = cancelRule();
  $("trip-cancel-rule").textContent = cancelRule();
}

$("quote-back").addEventListener("click", () => planning());

$("request").addEventListener("click", async () => {
  const q = state.quote;
  const button = $("request");
  button.disabled = true;
  try {
    const trip = await api("POST", "/v1/trips", {
      pickup: state.pickup, dropoff: state.dropoff,
      wheelchair_accessible: $("wheelchair").checked, quote_id: q.quote_id,
    }, { headers: { "Idempotency-Key": button.dataset.key } });
    showTrip(trip, true);
  } catch (problem) {
    if (problem.type === "rider_has_open_trip" && problem.body.trip_id) {
      try { showTrip(await api("GET", "/v1/trips/" + problem.body.trip_id), true); return; } catch (e) { /* shown below */ }
    }
    say($("quote-error"), problemText(problem));
  } finally {
    button.disabled = false;
  }
});

// --- the trip, live ---------------------------------------------------------------------------

function received(frame) {
  if (guard && guard.received(frame)) return;
  if (frame.type === "trip" && frame.trip) {
    const trip = frame.trip;
    const current = state.trip;
    if (current && current.id !== trip.id && !OPEN.has(trip.status)) return; // an older trip's news
    showTrip(trip, !current || current.status !== trip.status);
  } else if (frame.type === "driver_location" && state.trip && frame.trip_id === state.trip.id) {
    // The service's estimate (heading_to, eta_s) when it gives one; older servers do not.
    state.car = { lat: frame.lat, lon: frame.lon, heading_to: frame.heading_to, eta_s: frame.eta_s };
    if (tripMap) tripMap.point("car", state.car);
    eta();
  }
}

function driverName(trip) {
  return trip.driver ? trip.driver.name : "";
}

function showTrip(trip, changed) {
  const previous = state.trip;
  if (!previous || previous.id !== trip.id) state.car = null;
  state.trip = trip;
  if (!OPEN.has(trip.status)) { ended(trip, changed); return; }
  view("v-trip", changed);
  if (!tripMap) tripMap = makeMap("trip-map");
  tripMap.resize();
  tripMap.point("pickup", trip.pickup);
  tripMap.point("dropoff", trip.dropoff);
  tripMap.point("car", trip.status === "requested" ? null : state.car);
  if (changed) tripMap.fit(16);
  const title = t("status_" + trip.status, { name: driverName(trip) });
  $("trip-title").textContent = title;
  let detail = "";
  if (trip.status === "requested") detail = t("detail_requested", { time: clock(trip.matching_deadline_at) });
  if (trip.status === "arrived") detail = t("detail_arrived");
  $("trip-detail").textContent = detail;
  driverCard(trip);
  pinCard(trip);
  if (guard) guard.refresh();
  eta();
  show("cancel-trip", CANCELLABLE.has(trip.status));
  show("cancel-confirm", false);
  say($("trip-error"), "");
  if (changed) announce(title);
}

function driverCard(trip) {
  const driver = trip.driver;
  show("driver-card", Boolean(driver));
  if (!driver) { driverPhoto(null, ""); return; }
  const name = driver.name || driver.first_name;
  $("driver-name").textContent = name;
  const v = driver.vehicle || {};
  // What the rider checks at the curb, large: the car as its register has it, and the plate.
  $("car-text").textContent = [v.colour, v.make, v.model].filter(Boolean).join(" ");
  $("plate-text").textContent = v.plate || "";
  const facts = [v.seats ? t("seats", { n: v.seats }) : "", v.wheelchair_accessible ? t("accessible") : ""];
  $("vehicle-text").textContent = facts.filter(Boolean).join(" · ");
  driverPhoto(driver.photo_url, name);
}

async function driverPhoto(url, name) {
  const img = $("driver-photo");
  if (!url) {
    img.hidden = true;
    if (photo.blob) URL.revokeObjectURL(photo.blob);
    photo.url = null;
    photo.blob = null;
    return;
  }
  img.alt = t("photo_of", { name });
  // The key goes only to this service's own API, whatever an answer says the address is.
  if (photo.url === url || !url.startsWith("/v1/")) return;
  photo.url = url;
  let response;
  try {
    response = await fetch(url, { headers: { Authorization: "Bearer " + account.token } });
  } catch (error) {
    photo.url = null; // tried again with the next trip frame
    return;
  }
  if (!response.ok || photo.url !== url) { if (photo.url === url) photo.url = null; return; }
  const blob = URL.createObjectURL(await response.blob());
  if (photo.url !== url) { URL.revokeObjectURL(blob); return; }
  if (photo.blob) URL.revokeObjectURL(photo.blob);
  photo.blob = blob;
  img.src = blob;
  img.hidden = false;
}

// The PIN, large, while the driver is coming or waiting; the rider can vouch for the car
// instead when the driver was refused or cannot hear it (docs/safety.md, "The PIN at pickup").
function pinCard(trip) {
  const waiting = trip.status === "assigned" || trip.status === "arrived";
  show("trip-pin", Boolean(trip.pin) && waiting);
  $("pin-digits").textContent = trip.pin || "";
  show("pin-confirm-box", trip.status === "arrived" && Boolean(trip.pin_required));
}

$("pin-confirm").addEventListener("click", async () => {
  const button = $("pin-confirm");
  button.disabled = true;
  try {
    showTrip(await api("POST", `/v1/trips/${state.trip.id}/pin/confirm`), false);
    say($("trip-error"), t("pin_confirmed"));
    announce(t("pin_confirmed"));
  } catch (problem) {
    say($("trip-error"), problemText(problem));
  } finally {
    button.disabled = false;
  }
});

function eta() {
  const trip = state.trip;
  const line = $("trip-eta");
  const car = state.car;
  const told = car && typeof car.eta_s === "number";
  if (trip && trip.status === "in_progress" && told && car.heading_to === "destination") {
    line.textContent = t("eta_destination", { min: minutes(car.eta_s) });
    return;
  }
  if (!trip || trip.status !== "assigned" || !car) { line.textContent = ""; return; }
  const straight = haversine(car, trip.pickup);
  line.textContent = straight < 150
    ? t("driver_nearby", { distance: distance(straight) })
    : t("eta", { min: minutes(told && car.heading_to === "pickup" ? car.eta_s : (straight * DETOUR) / PRIOR_SPEED_MPS) });
}

$("cancel-trip").addEventListener("click", () => {
  const trip = state.trip;
  const c = state.terms && state.terms.cancellation;
  const assignedS = trip.assigned_at ? (Date.now() - Date.parse(trip.assigned_at)) / 1000 : 0;
  const free = !c || trip.status === "requested" || assignedS < c.free_period_s;
  $("cancel-confirm-text").textContent = free
    ? t("cancel_now_free")
    : t("cancel_now_fee", { fee: money(c.fee, state.terms.currency) });
  show("cancel-confirm", true);
  $("cancel-yes").focus();
});

$("cancel-no").addEventListener("click", () => { show("cancel-confirm", false); $("cancel-trip").focus(); });

$("cancel-yes").addEventListener("click", async () => {
  try {
    showTrip(await api("POST", `/v1/trips/${state.trip.id}/cancel`, {}), true);
  } catch (problem) {
    say($("trip-error"), problemText(problem));
    if (problem.type === "invalid_transition") {
      try { showTrip(await api("GET", "/v1/trips/" + state.trip.id), true); } catch (e) { /* the socket brings it */ }
    }
  }
});

// --- after the trip: the receipt and the rating -------------------------------------------------

function ended(trip, changed) {
  driverPhoto(null, "");
  if (guard) guard.refresh();
  view("v-done", changed);
  $("done-title").textContent = t("status_" + trip.status, { name: driverName(trip) });
  let detail = "";
  if (trip.status === "unfulfilled") detail = t("detail_unfulfilled");
  if (trip.status === "cancelled") {
    const fee = trip.cancellation_fee && Number(trip.cancellation_fee) > 0;
    detail = trip.cancelled_by === "driver"
      ? t("detail_cancelled_driver")
      : fee ? t("detail_cancelled_fee", { fee: money(trip.cancellation_fee, trip.quote.currency) }) : t("detail_cancelled_free");
  }
  $("done-detail").textContent = detail;
  $("receipt").replaceChildren();
  show("rated", false);
  const rated = $("rating");
  rated.hidden = trip.status !== "completed";
  if (trip.status === "completed") { ratingForm(); }
  if (trip.status === "completed" || (trip.cancellation_fee && Number(trip.cancellation_fee) > 0)) {
    receipt(trip.id, $("receipt"));
  }
  if (changed) announce($("done-title").textContent);
}

async function receipt(tripId, into) {
  let r;
  try {
    r = await api("GET", `/v1/trips/${tripId}/receipt`);
  } catch (problem) {
    const p = document.createElement("p");
    p.textContent = problemText(problem);
    into.replaceChildren(p);
    return;
  }
  const table = document.createElement("table");
  table.className = "receipt";
  table.id = "receipt-" + tripId;
  const caption = table.createCaption();
  caption.textContent = t("receipt") + (r.ended_at ? " — " + day(r.ended_at) : "");
  const body = table.createTBody();
  const row = (label, amount, cls) => {
    const tr = body.insertRow();
    if (cls) tr.className = cls;
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = label;
    const td = tr.insertCell();
    tr.prepend(th);
    td.textContent = money(amount, r.currency);
  };
  if (r.kind === "cancellation_fee") {
    row(t("cancellation_fee"), r.cancellation_fee || r.total, "total");
  } else {
    for (const item of r.items) {
      const rate = money(item.rate, r.currency);
      const label = item.item === "base" ? t("item_base")
        : item.item === "distance" ? t("item_distance", { q: Number(item.quantity).toLocaleString(config.lang), rate })
          : t("item_time", { q: Number(item.quantity).toLocaleString(config.lang), rate });
      row(label, item.amount);
    }
    row(t("fare"), r.total, "subtotal");
    if (r.dues) row((config.lang === "fr" && r.dues.name_fr) || r.dues.name, r.dues.amount);
    for (const tax of r.taxes || []) {
      row(`${(config.lang === "fr" && tax.name_fr) || tax.name} (${tax.percent} %)`, tax.amount);
    }
    row(t("billed"), r.amount_billed || r.total, "total");
  }
  const notes = document.createElement("ul");
  notes.className = "small notes";
  const note = (text) => { const li = document.createElement("li"); li.textContent = text; notes.append(li); };
  if (r.minimum_applied) note(t("minimum_applied"));
  if (r.fare_capped && r.fare_cap_reason) note(t("capped", { reason: r.fare_cap_reason }));
  if (r.max_total) note(t("max_total", { max: money(r.max_total, r.currency) }));
  if (r.kind !== "cancellation_fee") {
    note(t("driver_earns", { amount: money(r.driver_earnings, r.currency), commission: money(r.commission, r.currency), percent: r.commission_percent }));
  }
  note(t("agreement", { v: r.agreement_version }));
  into.replaceChildren(table, notes);
}

async function ratingForm() {
  const box = $("tags");
  if (!state.tags) {
    try { state.tags = (await api("GET", "/v1/ratings/tags")).tags; } catch (problem) { state.tags = []; }
  }
  for (const old of box.querySelectorAll(".choice")) old.remove();
  for (const tag of state.tags) {
    const label = document.createElement("label");
    label.className = "choice";
    const input = document.createElement("input");
    input.type = "checkbox";
    input.name = "tag";
    input.value = tag.code;
    label.append(input, " " + (words.tags[tag.code] || tag.description));
    box.append(label);
  }
  $("rating").reset();
  say($("rating-error"), "");
}

$("rating").addEventListener("submit", async (event) => {
  event.preventDefault();
  const stars = document.querySelector('input[name="stars"]:checked');
  if (!stars) { say($("rating-error"), t("rate_stars")); return; }
  const body = { stars: Number(stars.value) };
  const tags = Array.from(document.querySelectorAll('input[name="tag"]:checked'), (i) => i.value);
  if (tags.length) body.tags = tags;
  const comment = $("comment").value.trim();
  if (comment) body.comment = comment;
  try {
    await api("POST", `/v1/trips/${state.trip.id}/rating`, body);
    $("rating").hidden = true;
    show("rated", true);
    $("rated").focus && $("new-trip").focus();
  } catch (problem) {
    say($("rating-error"), problemText(problem));
    if (problem.type === "already_rated") $("rating").hidden = true;
  }
});

$("new-trip").addEventListener("click", () => {
  state.trip = null;
  state.quote = null;
  state.dropoff = null;
  planMap.point("dropoff", null);
  $("dropoff-text").textContent = "—";
  document.querySelector('input[name="pin"][value="dropoff"]').checked = true;
  planning();
});

// --- past trips --------------------------------------------------------------------------------

$("show-history").addEventListener("click", async () => {
  const list = $("history-list");
  list.replaceChildren();
  $("history-receipt").replaceChildren();
  view("v-history", true);
  let trips;
  try {
    trips = (await api("GET", "/v1/riders/me/export")).trips_requested || [];
  } catch (problem) {
    const li = document.createElement("li");
    li.textContent = problemText(problem);
    list.append(li);
    return;
  }
  if (!trips.length) { const li = document.createElement("li"); li.textContent = t("trips_none"); list.append(li); return; }
  for (const trip of trips.slice().reverse().slice(0, 30)) {
    const li = document.createElement("li");
    li.className = "card";
    const status = OPEN.has(trip.status) ? t("status_name_open") : t("status_name_" + trip.status);
    const p = document.createElement("p");
    p.textContent = t("trip_of", { date: day(trip.requested_at), status })
      + (trip.fare ? " · " + money(trip.fare.total, trip.fare.currency) : "");
    li.append(p);
    if (trip.status === "completed" || (trip.cancellation_fee && Number(trip.cancellation_fee) > 0)) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = t("show_receipt");
      button.onclick = () => receipt(trip.id, $("history-receipt")).then(() => $("history-receipt").scrollIntoView());
      li.append(button);
    }
    list.append(li);
  }
});

$("history-back").addEventListener("click", () => {
  if (state.trip) showTrip(state.trip, true); else planning();
});

// --- start ---------------------------------------------------------------------------------------

installable();
if (account.token) begin(); else view("v-welcome", false);
document.body.dataset.ready = "true";
