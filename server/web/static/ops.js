// The live operations map: the service area, every connected driver as a dot coloured by state,
// open requests, and each batch's offers drawn as lines for a moment. Updated by Server-Sent
// Events (/ops/stream) at the batch rate. The points are drawn on one canvas and the offer lines
// on another, so thousands of drivers cost one redraw per batch (not one DOM node each), and the
// lines fade without repainting the drivers (docs/web.md, "The map at 5,000 drivers").
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

  // Two canvases over the map: the points (drivers and requests), redrawn once per batch and
  // after the map moves; and the offer lines, redrawn on every animation frame while they fade.
  // So the fading lines never repaint 5,000 drivers, and a redraw of the points projects each
  // one with plain arithmetic (no object per point) and stamps a pre-drawn dot.
  var RADIUS = 3;
  var TAU = 2 * Math.PI;

  function sprite(colour, radius, ratio) {
    var size = Math.ceil((radius + 1) * 2 * ratio), dot = document.createElement("canvas");
    dot.width = dot.height = size;
    var c = dot.getContext("2d");
    c.fillStyle = colour;
    c.beginPath(); c.arc(size / 2, size / 2, radius * ratio, 0, TAU); c.fill();
    return dot;
  }

  // Web Mercator at the map's zoom, as Leaflet projects (EPSG:3857), then to the canvas.
  function projector(m) {
    var scale = 256 * Math.pow(2, m.getZoom()), origin = m.getPixelOrigin();
    var topLeft = m.containerPointToLayerPoint([0, 0]);
    var dx = origin.x + topLeft.x, dy = origin.y + topLeft.y, limit = 85.0511287798;
    return {
      x: function (lon) { return scale * (lon / 360 + 0.5) - dx; },
      y: function (lat) {
        lat = Math.max(-limit, Math.min(limit, lat)) * Math.PI / 180;
        return scale * (0.5 - Math.log(Math.tan(Math.PI / 4 + lat / 2)) / TAU) - dy;
      },
    };
  }

  var CityLayer = L.Layer.extend({
    onAdd: function (m) {
      this._points = L.DomUtil.create("canvas", "leaflet-zoom-hide");
      this._lines = L.DomUtil.create("canvas", "leaflet-zoom-hide");
      this._points.setAttribute("aria-hidden", "true");
      this._lines.setAttribute("aria-hidden", "true");
      m.getPanes().overlayPane.appendChild(this._points);
      m.getPanes().overlayPane.appendChild(this._lines);
      m.on("moveend zoomend resize viewreset", this._reset, this);
      this._reset();
    },
    onRemove: function (m) {
      L.DomUtil.remove(this._points); L.DomUtil.remove(this._lines);
      m.off("moveend zoomend resize viewreset", this._reset, this);
    },
    _reset: function () {
      var size = map.getSize(), ratio = window.devicePixelRatio || 1;
      var topLeft = map.containerPointToLayerPoint([0, 0]);
      var canvases = [this._points, this._lines];
      for (var i = 0; i < canvases.length; i++) {
        L.DomUtil.setPosition(canvases[i], topLeft);
        canvases[i].width = size.x * ratio; canvases[i].height = size.y * ratio;
        canvases[i].style.width = size.x + "px"; canvases[i].style.height = size.y + "px";
      }
      var radius = map.getZoom() >= 14 ? RADIUS + 1 : RADIUS;
      if (this._ratio !== ratio || this._radius !== radius) {
        this._sprites = COLOURS.map(function (colour) { return sprite(colour, radius, ratio); });
      }
      this._ratio = ratio; this._radius = radius;
      this.drawPoints();
      this.drawLines();
    },
    drawPoints: function () {
      var ctx = this._points.getContext("2d"), ratio = this._ratio || 1;
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.clearRect(0, 0, this._points.width, this._points.height);
      if (!state.frame) return;
      var frame = state.frame, project = projector(map), i, x, y;
      var width = this._points.width, height = this._points.height;
      var half = this._sprites[0].width / 2;
      for (i = 0; i < frame.drivers.length; i++) {
        var d = frame.drivers[i];
        x = project.x(d[1]) * ratio; y = project.y(d[0]) * ratio;
        if (x < -half || y < -half || x > width + half || y > height + half) continue;
        ctx.drawImage(this._sprites[d[2]] || this._sprites[3], x - half, y - half);
      }
      ctx.fillStyle = REQUEST;
      for (i = 0; i < frame.requests.length; i++) {
        x = project.x(frame.requests[i][1]) * ratio; y = project.y(frame.requests[i][0]) * ratio;
        ctx.fillRect(x - 3 * ratio, y - 3 * ratio, 6 * ratio, 6 * ratio);
      }
    },
    drawLines: function () {
      var ctx = this._lines.getContext("2d"), ratio = this._ratio || 1;
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, this._lines.width, this._lines.height);
      var frame = state.frame, age = performance.now() - state.offersAt;
      if (!frame || age >= LINE_MS || !frame.offers.length) return false;
      var project = projector(map);
      ctx.globalAlpha = 1 - age / LINE_MS;
      ctx.strokeStyle = "#111"; ctx.lineWidth = 1.5;
      ctx.beginPath();
      for (var i = 0; i < frame.offers.length; i++) {
        var o = frame.offers[i];
        ctx.moveTo(project.x(o[1]), project.y(o[0]));
        ctx.lineTo(project.x(o[3]), project.y(o[2]));
      }
      ctx.stroke();
      ctx.globalAlpha = 1;
      return true;
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

  var animating = false;
  function animateLines() {
    animating = layer.drawLines();
    if (animating) requestAnimationFrame(animateLines);
  }

  function onCity(event) {
    var frame = JSON.parse(event.data);
    state.frame = frame;
    layer.drawPoints();
    if (frame.offers.length) {
      state.offersAt = performance.now();
      if (!animating) { animating = true; requestAnimationFrame(animateLines); }
    } else if (!animating) layer.drawLines();
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
    document.dispatchEvent(new CustomEvent("ops-city", { detail: frame }));
  }

  var source = new EventSource("/ops/stream");
  source.addEventListener("city", onCity);
  source.onerror = function () { status.textContent = status.dataset.lost; };
})();
