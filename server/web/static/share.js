// The shared-trip page (/t/…): the car on a map, the trip's state and ETA, pushed by the
// service as Server-Sent Events (/v1/shared/<token>/events). After a cut the page reconnects by
// itself (the browser's own retry, and ours with a growing delay when the browser gives up);
// once the trip is over, or the link is revoked or expired, it says so and stops.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("share-config").textContent);
  var labels = config.labels;
  var stateEl = document.getElementById("share-state");
  var etaEl = document.getElementById("share-eta");
  var liveEl = document.getElementById("share-live");
  var who = document.querySelector(".share-who");

  var map = L.map("share-map", { zoomSnap: 0.25, keyboard: true });
  if (config.tiles) {
    L.tileLayer(config.tiles, { maxZoom: 19, attribution: config.attribution || "" }).addTo(map);
  }
  var area = L.geoJSON(config.area, {
    style: { color: "#0b5d3b", weight: 2, fillColor: "#0b5d3b", fillOpacity: 0.04 },
    interactive: false,
  }).addTo(map);
  map.fitBounds(area.getBounds(), { padding: [10, 10] });
  var mapEl = document.getElementById("share-map");
  var car = null, target = null, way = null, followed = false;

  function show(trip) {
    stateEl.textContent = labels[trip.status] || trip.status;
    stateEl.dataset.status = trip.status;
    if (trip.eta_s !== null && trip.eta_s !== undefined) {
      var minutes = Math.max(1, Math.ceil(trip.eta_s / 60));
      var text = trip.heading_to === "pickup" ? labels.eta_pickup : labels.eta_destination;
      etaEl.textContent = text.replace("%(min)s", String(minutes));
    } else {
      etaEl.textContent = "";
    }
    if (trip.driver) {
      who.hidden = false;
      document.getElementById("share-driver").textContent = trip.driver.first_name;
    }
    if (trip.vehicle) {
      var v = trip.vehicle;
      document.getElementById("share-car").textContent =
        [v.colour, v.make, v.model].filter(Boolean).join(" ");
      document.getElementById("share-plate").textContent = v.plate;
    }
    if (trip.target) {
      var t = [trip.target.lat, trip.target.lon];
      if (!target) {
        target = L.circleMarker(t, { radius: 7, color: "#c2185b", weight: 3, fillOpacity: 0.2 })
          .bindTooltip(labels.heading).addTo(map);
      } else target.setLatLng(t);
    } else if (target) { map.removeLayer(target); target = null; }
    if (trip.position) {
      var p = [trip.position.lat, trip.position.lon];
      if (!car) {
        car = L.circleMarker(p, { radius: 9, color: "#1f4fd1", weight: 3, fillColor: "#1f4fd1",
          fillOpacity: 0.9 }).bindTooltip(labels.car).addTo(map);
      } else car.setLatLng(p);
      // The way still to go, as the crow flies: the car and where it is heading, both in view.
      if (target) {
        if (!way) {
          way = L.polyline([p, target.getLatLng()], { color: "#1f4fd1", weight: 2,
            dashArray: "4 6", interactive: false }).addTo(map);
        } else way.setLatLngs([p, target.getLatLng()]);
      }
      if (!followed) {
        if (target) map.fitBounds(L.latLngBounds([p, target.getLatLng()]), { padding: [40, 40],
          maxZoom: 16 });
        else map.setView(p, 15);
        followed = true;
      } else if (!map.getBounds().pad(-0.1).contains(p)) {
        map.panTo(p);
      }
      document.body.dataset.carLat = String(trip.position.lat);
      document.body.dataset.carLon = String(trip.position.lon);
    } else if (car) { map.removeLayer(car); car = null; }
    if ((!trip.position || !target) && way) { map.removeLayer(way); way = null; }
    // Once the trip is over there is nothing left to show on a map (no position, no address).
    mapEl.hidden = !!trip.over;
    document.body.dataset.shareEvents = String((+document.body.dataset.shareEvents || 0) + 1);
  }

  var source = null, delayMs = 1000, stopped = false;

  function stop(message, state) {
    stopped = true;
    if (source) { source.close(); source = null; }
    liveEl.textContent = message;
    document.body.dataset.shareStream = state;
  }

  function connect() {
    if (stopped) return;
    source = new EventSource("/v1/shared/" + encodeURIComponent(config.token) + "/events");
    document.body.dataset.shareConnects = String((+document.body.dataset.shareConnects || 0) + 1);
    source.onopen = function () {
      // Also after the browser's own reconnection, on the same EventSource.
      document.body.dataset.shareOpens = String((+document.body.dataset.shareOpens || 0) + 1);
      delayMs = 1000;
      liveEl.textContent = labels.live;
      document.body.dataset.shareStream = "open";
    };
    source.addEventListener("trip", function (event) {
      var trip = JSON.parse(event.data);
      show(trip);
      if (trip.over) stop(labels.ended, "ended");
    });
    source.addEventListener("gone", function () { stop(labels.gone, "gone"); });
    source.onerror = function () {
      if (stopped) return;
      liveEl.textContent = labels.lost;
      document.body.dataset.shareStream = "lost";
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (an answer that was not a stream): ask why, then retry or stop.
        source = null;
        fetch("/v1/shared/" + encodeURIComponent(config.token), { cache: "no-store" })
          .then(function (response) {
            if (response.status === 404) { stop(labels.gone, "gone"); return; }
            setTimeout(connect, delayMs);
            delayMs = Math.min(delayMs * 2, 30000);
          })
          .catch(function () {
            setTimeout(connect, delayMs);
            delayMs = Math.min(delayMs * 2, 30000);
          });
      }
    };
  }

  show(config.trip);
  if (config.trip.over) stop(labels.ended, "ended");
  else connect();
})();
