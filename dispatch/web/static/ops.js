// The live operations map: the service area, every connected driver as a dot coloured by state,
// open requests, and each batch's offers drawn as lines for a moment. Updated by Server-Sent
// Events (/ops/stream) at the batch rate. All points are drawn on one canvas, so thousands of
// drivers cost one redraw, not one DOM node each.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("ops-config").textContent);
  var COLOURS = ["#1b7f3b", "#e08a00", "#1f4fd1", "#8c8c8c"];
  var REQUEST = "#c2185b";
  var LINE_MS = 1500;

  var map = L.map("map", { preferCanvas: true, zoomSnap: 0.25, keyboard: true });
  if (config.tiles) {
    L.tileLayer(config.tiles, { maxZoom: 19, attribution: config.attribution || "" }).addTo(map);
  }
  var area = L.geoJSON(config.area, {
    style: { color: "#0b5d3b", weight: 2, fillColor: "#0b5d3b", fillOpacity: 0.04 },
    interactive: false,
  }).addTo(map);
  map.fitBounds(area.getBounds(), { padding: [10, 10] });

  // One canvas over the map for drivers, requests and offer lines.
  var CityLayer = L.Layer.extend({
    onAdd: function (m) {
      this._canvas = L.DomUtil.create("canvas", "leaflet-zoom-hide");
      this._canvas.setAttribute("aria-hidden", "true");
      m.getPanes().overlayPane.appendChild(this._canvas);
      m.on("moveend zoomend resize viewreset", this._reset, this);
      this._reset();
    },
    onRemove: function (m) {
      L.DomUtil.remove(this._canvas);
      m.off("moveend zoomend resize viewreset", this._reset, this);
    },
    _reset: function () {
      var size = map.getSize(), ratio = window.devicePixelRatio || 1;
      var topLeft = map.containerPointToLayerPoint([0, 0]);
      L.DomUtil.setPosition(this._canvas, topLeft);
      this._canvas.width = size.x * ratio; this._canvas.height = size.y * ratio;
      this._canvas.style.width = size.x + "px"; this._canvas.style.height = size.y + "px";
      this._ratio = ratio;
      this.draw();
    },
    draw: function () {
      var ctx = this._canvas.getContext("2d"), ratio = this._ratio || 1;
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, this._canvas.width, this._canvas.height);
      if (!state.frame) return;
      var frame = state.frame, i, p, q;
      var radius = map.getZoom() >= 14 ? 4 : 3;
      // Offer lines of the last batch, fading out.
      var age = performance.now() - state.offersAt;
      if (age < LINE_MS && frame.offers.length) {
        ctx.globalAlpha = 1 - age / LINE_MS;
        ctx.strokeStyle = "#111"; ctx.lineWidth = 1.5;
        ctx.beginPath();
        for (i = 0; i < frame.offers.length; i++) {
          var o = frame.offers[i];
          p = map.latLngToContainerPoint([o[0], o[1]]); q = map.latLngToContainerPoint([o[2], o[3]]);
          ctx.moveTo(p.x, p.y); ctx.lineTo(q.x, q.y);
        }
        ctx.stroke();
        ctx.globalAlpha = 1;
      }
      // Drivers, one path per colour.
      for (var s = 0; s < COLOURS.length; s++) {
        ctx.fillStyle = COLOURS[s];
        ctx.beginPath();
        for (i = 0; i < frame.drivers.length; i++) {
          var d = frame.drivers[i];
          if (d[2] !== s) continue;
          p = map.latLngToContainerPoint([d[0], d[1]]);
          ctx.moveTo(p.x + radius, p.y); ctx.arc(p.x, p.y, radius, 0, 2 * Math.PI);
        }
        ctx.fill();
      }
      // Open requests as small squares.
      ctx.fillStyle = REQUEST;
      for (i = 0; i < frame.requests.length; i++) {
        p = map.latLngToContainerPoint(frame.requests[i]);
        ctx.fillRect(p.x - 3, p.y - 3, 6, 6);
      }
    },
  });

  var state = { frame: null, offersAt: 0, history: { t: [], offers: [], eta: [] } };
  var layer = new CityLayer();
  layer.addTo(map);

  var chart = null;
  var chartBox = document.getElementById("ops-chart");
  function makeChart() {
    var width = Math.max(200, chartBox.clientWidth || 260);
    chart = new uPlot({
      width: width, height: 160, legend: { show: true },
      scales: { x: { time: true } },
      series: [
        { label: config.labels.time },
        { label: config.labels.offers, stroke: "#1f4fd1", width: 2 },
        { label: config.labels.eta, stroke: "#e08a00", width: 2, scale: "s" },
      ],
      axes: [{}, {}, { scale: "s", side: 1, grid: { show: false } }],
    }, [[], [], []], chartBox);
  }

  var status = document.getElementById("ops-status");
  var counts = document.querySelectorAll("#ops-counts [data-count]");
  var numbers = new Intl.NumberFormat(config.lang === "fr" ? "fr-CA" : "en-CA");

  function animateLines() {
    layer.draw();
    if (performance.now() - state.offersAt < LINE_MS) requestAnimationFrame(animateLines);
  }

  function onCity(event) {
    var frame = JSON.parse(event.data);
    state.frame = frame;
    if (frame.offers.length) { state.offersAt = performance.now(); requestAnimationFrame(animateLines); }
    else layer.draw();
    for (var i = 0; i < counts.length; i++) {
      var key = counts[i].dataset.count, value = frame.counts[key];
      counts[i].textContent = value === null || value === undefined ? "—" :
        (key === "median_pickup_eta_s" ? numbers.format(value) + " s" : numbers.format(value));
    }
    var h = state.history;
    h.t.push(Date.parse(frame.at) / 1000); h.offers.push(frame.counts.offers);
    h.eta.push(frame.counts.median_pickup_eta_s);
    if (h.t.length > 90) { h.t.shift(); h.offers.shift(); h.eta.shift(); }
    if (!chart) makeChart();
    chart.setData([h.t, h.offers, h.eta]);
    status.textContent = status.dataset.live;
    document.body.dataset.opsFrames = String((+document.body.dataset.opsFrames || 0) + 1);
    document.body.dataset.opsDrivers = String(frame.drivers.length);
  }

  var source = new EventSource("/ops/stream");
  source.addEventListener("city", onCity);
  source.onerror = function () { status.textContent = status.dataset.lost; };
})();
