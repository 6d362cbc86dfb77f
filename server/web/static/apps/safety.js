// What both apps do for safety (docs/apps.md, "Safety"), on the public API only: share the
// open trip (`POST /v1/trips/{id}/share`, and the `trip_shared` / `share_opened` frames), and
// the emergency alert (`POST /v1/trips/{id}/sos` or `POST /v1/sos`, then the phone's position
// as `sos_position` frames every `position_every_s` until a person resolves it).

import { announce, api, clock, config, problemText, say, show, t } from "./common.js";

const $ = (id) => document.getElementById(id);
// The alert being followed survives a reload: the raiser must keep seeing what happens to it.
const ALERT_KEY = "coop." + config.app + ".sos";
// An alert only moves forward: the `201` and the frames may arrive in either order.
const STEP = { raised: 0, acknowledged: 1, resolved: 2 };

export class Safety {
  /**
   * `live`: the app's socket; `trip()`: the open trip or null; `where()`: the newest position
   * the app already holds, or null (the module also watches the phone's own while an alert is
   * open, since the rider app does not follow it otherwise); `always`: the alert is offered
   * without a trip too (the rider app), else only during one or while an alert is open.
   */
  constructor({ live, trip, where, always }) {
    this.always = Boolean(always);
    this.live = live;
    this.trip = trip;
    this.where = where;
    this.alert = null;
    this.timer = null;
    this.watch = null;
    this.fix = null;
    $("share-trip").addEventListener("click", () => this.share());
    $("sos-open").addEventListener("click", () => this.confirming(true));
    $("sos-no").addEventListener("click", () => this.confirming(false));
    $("sos-yes").addEventListener("click", () => this.raise(false));
    $("sos-drill").addEventListener("click", () => this.raise(true));
  }

  /** Shows what fits the moment: sharing needs an open trip; an open alert stays in view. */
  refresh() {
    const open = Boolean(this.trip());
    const alerting = Boolean(this.alert && this.alert.status !== "resolved");
    show("safety", this.always || open || alerting);
    show("share-trip", open);
    if (!open) { show("share-box", false); }
  }

  /** Follows up an alert raised before a reload. */
  async resume() {
    const id = localStorage.getItem(ALERT_KEY);
    if (!id) return;
    try {
      this.follow(await api("GET", "/v1/sos/" + id));
    } catch (problem) {
      localStorage.removeItem(ALERT_KEY);
    }
  }

  // --- share my trip --------------------------------------------------------------------------

  async share() {
    const trip = this.trip();
    if (!trip) return;
    const button = $("share-trip");
    button.disabled = true;
    try {
      const link = await api("POST", `/v1/trips/${trip.id}/share`);
      await this.offer(link.url, false);
    } catch (problem) {
      say($("share-status"), problemText(problem));
      show("share-box", true);
    } finally {
      button.disabled = false;
    }
  }

  /** Hands the link to the phone's share sheet, else to the clipboard; shows it either way,
   * since the token is given once and the person may want to copy it by hand. */
  async offer(url, automatic) {
    const link = $("share-link");
    link.href = url;
    link.textContent = url;
    show("share-box", true);
    let said = automatic ? t("share_auto") : t("share_shown");
    // A share sheet needs a tap: an automatic link waits for the person to send it.
    if (!automatic && navigator.share) {
      try {
        await navigator.share({ url, title: t("share_title") });
        said = t("share_sent");
      } catch (error) { /* closed without sending: the link stays shown */ }
    } else if (!automatic && navigator.clipboard && navigator.clipboard.writeText) {
      try {
        await navigator.clipboard.writeText(url);
        said = t("share_copied");
      } catch (error) { /* no clipboard: the link stays shown */ }
    }
    say($("share-status"), said);
    announce(said);
  }

  // --- SOS -----------------------------------------------------------------------------------

  confirming(open) {
    // The phone's position is sought from the first tap, so the alert carries a fresh one.
    if (open) this.watching();
    else if (!this.alert || this.alert.status === "resolved") this.unwatch();
    show("sos-confirm", open);
    $("sos-open").setAttribute("aria-expanded", String(open));
    if (open) $("sos-yes").focus(); else $("sos-open").focus();
  }

  position() {
    return this.fix || (this.where && this.where()) || null;
  }

  async raise(drill) {
    const trip = this.trip();
    const here = this.position();
    const body = { drill };
    if (here) { body.lat = here.lat; body.lon = here.lon; }
    for (const id of ["sos-yes", "sos-drill"]) $(id).disabled = true;
    try {
      const path = trip ? `/v1/trips/${trip.id}/sos` : "/v1/sos";
      const alert = await api("POST", path, body);
      show("sos-confirm", false);
      $("sos-open").setAttribute("aria-expanded", "false");
      this.follow(alert);
    } catch (problem) {
      say($("sos-status"), problemText(problem));
    } finally {
      for (const id of ["sos-yes", "sos-drill"]) $(id).disabled = false;
    }
  }

  /** Shows the alert's state and, while it is open, sends the phone's position. */
  follow(alert) {
    const box = $("sos-status");
    if (alert.drill) {
      // A drill alerted no one: said so, and an alert still open goes on being followed.
      if (!this.alert || this.alert.status === "resolved") { box.dataset.status = "drill"; this.unwatch(); }
      say(box, t("sos_drill_done"));
      announce(t("sos_drill_done"));
      return;
    }
    if (this.alert && this.alert.id !== alert.id && this.alert.status !== "resolved" && alert.status === "resolved") return;
    if (this.alert && this.alert.id === alert.id && STEP[alert.status] < STEP[this.alert.status]) return;
    this.alert = alert;
    box.dataset.status = alert.status;
    const text = t("sos_" + alert.status, { time: clock(alert.at || new Date().toISOString()) });
    say(box, text);
    announce(text);
    if (alert.status === "resolved" || !alert.position_every_s) {
      this.stop();
      return;
    }
    localStorage.setItem(ALERT_KEY, alert.id);
    this.refresh();
    this.watching();
    if (!this.timer) {
      this.send();
      this.timer = window.setInterval(() => this.send(), alert.position_every_s * 1000);
    }
  }

  watching() {
    if (this.watch !== null || !("geolocation" in navigator)) return;
    this.watch = navigator.geolocation.watchPosition(
      (fix) => { this.fix = { lat: fix.coords.latitude, lon: fix.coords.longitude }; },
      () => {},
      { enableHighAccuracy: true, maximumAge: 2000 },
    );
  }

  async send() {
    const alert = this.alert;
    const here = this.position();
    if (!alert || !here) return;
    const frame = { type: "sos_position", alert_id: alert.id, lat: here.lat, lon: here.lon };
    if (this.live() && this.live().send(frame)) return;
    // The socket is down: the same report over HTTP.
    try {
      await api("POST", `/v1/sos/${alert.id}/positions`, { lat: here.lat, lon: here.lon });
    } catch (problem) {
      if (problem.type === "alert_resolved" || problem.type === "alert_not_found") this.stop();
    }
  }

  unwatch() {
    if (this.watch !== null) navigator.geolocation.clearWatch(this.watch);
    this.watch = null;
  }

  stop() {
    window.clearInterval(this.timer);
    this.timer = null;
    this.unwatch();
    localStorage.removeItem(ALERT_KEY);
  }

  /** The frames this module reads; true when it took the frame. */
  received(frame) {
    switch (frame.type) {
      case "hello":
        // Back after a cut: what happened to the alert meanwhile.
        if (this.alert && this.alert.status !== "resolved") this.resume();
        return false;
      case "sos_status":
        this.follow(frame);
        return true;
      case "trip_shared":
        this.offer(frame.url, true);
        return true;
      case "share_opened": {
        const text = t("share_opened", { time: clock(frame.opened_at) });
        say($("share-status"), text);
        show("share-box", true);
        announce(text);
        return true;
      }
      case "error":
        if (this.alert && (frame.code === "alert_resolved" || frame.code === "alert_not_found")) {
          this.stop();
          return true;
        }
        return false;
      default:
        return false;
    }
  }
}
