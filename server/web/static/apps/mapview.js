// The apps' maps: Leaflet (served by the service), the service area's outline, and the base
// tiles only when the co-op set a tile server (COOP_MAP_TILES_URL; nothing is fetched from
// elsewhere otherwise). Points are circle markers: no image to fetch, readable in both themes.

import { config } from "./common.js";

const COLOURS = { me: "#1f4fd1", car: "#1f4fd1", pickup: "#0b7a3e", dropoff: "#b3261e" };

export function makeMap(id, options) {
  const map = L.map(id, Object.assign({ zoomControl: true, keyboard: true, attributionControl: Boolean(config.tiles) }, options || {}));
  if (config.tiles) {
    L.tileLayer(config.tiles, { maxZoom: 19, attribution: config.attribution || "" }).addTo(map);
  }
  const area = L.geoJSON(config.area, {
    style: { color: "#0b5d3b", weight: 2, fillColor: "#0b5d3b", fillOpacity: 0.05 },
    interactive: false,
  }).addTo(map);
  map.fitBounds(area.getBounds());
  const points = {};
  return {
    map,
    /** Places (or moves) the named point; null removes it. */
    point(name, position) {
      if (!position) {
        if (points[name]) { points[name].remove(); delete points[name]; }
        return;
      }
      const at = [position.lat, position.lon];
      if (points[name]) { points[name].setLatLng(at); return; }
      points[name] = L.circleMarker(at, {
        radius: name === "car" || name === "me" ? 9 : 8, weight: 3, color: "#ffffff",
        fillColor: COLOURS[name] || "#333", fillOpacity: 1, interactive: false,
      }).addTo(map);
    },
    /** Frames every point there is (one point: centred at a street's scale). */
    fit(maxZoom) {
      const all = Object.values(points).map((p) => p.getLatLng());
      if (all.length === 1) map.setView(all[0], maxZoom || 15);
      else if (all.length > 1) map.fitBounds(L.latLngBounds(all), { padding: [30, 30], maxZoom: maxZoom || 16 });
    },
    /** Leaflet measures its box once; a map shown after being hidden measures again. */
    resize() { map.invalidateSize(); },
  };
}
