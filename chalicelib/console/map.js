// The map of open warnings: an inline SVG of the Binhai New Area's bounding box, drawn without any tile server
// (the machine and many government networks have no internet). A warning of a fixed device is drawn where the device
// is registered (`location` in GET /devices), a vehicle's at its last GNSS fix (`last_fix`); a device with neither,
// or a vehicle whose fix is off the map, at the centre of its first area (areas.js). Points at one place are spread
// around it so that none covers another; vehicles as triangles, sites as circles.

import { AREAS, BOUNDS } from "./areas.js";
import { LEVEL_COLOURS } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 1000;
const MID_LAT = ((BOUNDS.north + BOUNDS.south) / 2) * (Math.PI / 180);
// Equirectangular with the mid-latitude's scale: a kilometre east is as long as a kilometre north.
const HEIGHT = Math.round((WIDTH * (BOUNDS.north - BOUNDS.south)) / ((BOUNDS.east - BOUNDS.west) * Math.cos(MID_LAT)));

export function project(lon, lat) {
  return [
    ((lon - BOUNDS.west) / (BOUNDS.east - BOUNDS.west)) * WIDTH,
    ((BOUNDS.north - lat) / (BOUNDS.north - BOUNDS.south)) * HEIGHT,
  ];
}

function svg(tag, attributes = {}, text = "") {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text) node.textContent = text;
  return node;
}

// The i-th of n points around an area's centre: a sunflower spiral, so points of one area never cover each other.
function spread(index) {
  const angle = index * 2.39996;
  const radius = index ? 26 + 16 * Math.sqrt(index) : 0;
  return [Math.cos(angle) * radius, Math.sin(angle) * radius];
}

function onMap(place) {
  return place.lat >= BOUNDS.south && place.lat <= BOUNDS.north && place.lon >= BOUNDS.west && place.lon <= BOUNDS.east;
}

// Each warning's point: where its device is (`locations`: device id → {lat, lon} as registered, or {lat, lon, at}
// for a vehicle's last fix), else its first known area's centre. `placedBy` says which: "site", "fix" or "area";
// `located` is true for the first two; `offMap` marks a fix outside the map drawn at its area instead.
export function placeWarnings(warnings, locations = {}) {
  const perPlace = {};
  const placed = [];
  const unplaced = [];
  for (const warning of warnings) {
    const known = locations[warning.device_id];
    const offMap = Boolean(known) && !onMap(known);
    const place = known && !offMap ? known : null;
    const code = warning.area_codes.find((area) => AREAS[area]);
    if (!place && !code) {
      unplaced.push(warning);
      continue;
    }
    const [x, y] = place ? project(place.lon, place.lat) : project(AREAS[code].lon, AREAS[code].lat);
    const key = `${Math.round(x)},${Math.round(y)}`;
    const index = (perPlace[key] = (perPlace[key] ?? -1) + 1);
    const [dx, dy] = spread(index);
    const placedBy = place ? (place.at === undefined ? "site" : "fix") : "area";
    placed.push({ warning, area: code, located: Boolean(place), placedBy, fixAt: place?.at, offMap, x: x + dx, y: y + dy });
  }
  return { placed, unplaced };
}

function clockTime(epochS) {
  return new Date(epochS * 1000).toLocaleString("zh-CN", { hour12: false, timeZone: "Asia/Shanghai" });
}

export function drawMap(root, warnings, locations = {}) {
  const { placed, unplaced } = placeWarnings(warnings, locations);
  const map = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, id: "map-svg", role: "img", "aria-label": "滨海新区未闭环预警分布" });
  map.append(svg("rect", { x: 0, y: 0, width: WIDTH, height: HEIGHT, class: "frame" }));
  for (let lon = 117.3; lon < BOUNDS.east; lon += 0.1) {
    const [x] = project(lon, BOUNDS.north);
    map.append(svg("line", { x1: x, y1: 0, x2: x, y2: HEIGHT, class: "grid" }));
    map.append(svg("text", { x: x + 4, y: HEIGHT - 10, class: "grid-label" }, `${lon.toFixed(1)}°E`));
  }
  for (let lat = 38.7; lat < BOUNDS.north; lat += 0.1) {
    const [, y] = project(BOUNDS.west, lat);
    map.append(svg("line", { x1: 0, y1: y, x2: WIDTH, y2: y, class: "grid" }));
    map.append(svg("text", { x: 6, y: y - 6, class: "grid-label" }, `${lat.toFixed(1)}°N`));
  }
  for (const [code, area] of Object.entries(AREAS)) {
    const [x, y] = project(area.lon, area.lat);
    map.append(svg("circle", { cx: x, cy: y, r: 6, class: "area-dot" }));
    map.append(svg("text", { x: x + 10, y: y + 26, class: "area-label", "data-area": code }, area.name));
  }
  map.append(svg("text", { x: WIDTH - 24, y: HEIGHT * 0.62, class: "sea-label", "text-anchor": "end" }, "渤海"));
  // Reds last, so they are drawn on top.
  const order = { blue: 0, yellow: 1, orange: 2, red: 3 };
  placed.sort((a, b) => (order[a.warning.level] ?? 0) - (order[b.warning.level] ?? 0));
  for (const { warning, located, placedBy, fixAt, x, y } of placed) {
    const colour = LEVEL_COLOURS[warning.level] || "#888";
    const vehicle = warning.sector === "road_transport";
    const mark = vehicle
      ? svg("polygon", { points: `${x},${y - 18} ${x - 16},${y + 12} ${x + 16},${y + 12}` })
      : svg("circle", { cx: x, cy: y, r: 14 });
    mark.setAttribute("fill", colour);
    mark.setAttribute("class", `point level-${warning.level}`);
    const link = svg("a", {
      href: `#/warning/${encodeURIComponent(warning.warning_id)}`,
      "data-warning-id": warning.warning_id,
      "data-located": String(located),
      "data-placed-by": placedBy,
    });
    const where = placedBy === "fix" ? `（最近定位 ${clockTime(fixAt)}）` : "";
    const label = `${warning.level_zh} ${warning.enterprise_name} ${warning.point_name} ${warning.title}${where}`;
    link.append(svg("title", {}, label), mark);
    map.append(link);
  }
  const legend = document.createElement("p");
  legend.className = "muted";
  legend.id = "map-legend";
  const byArea = placed.filter((point) => !point.located);
  const offMap = byArea.filter((point) => point.offMap).length;
  legend.textContent =
    `图上 ${placed.length} 条预警（圆点：场所，按登记坐标；三角：车辆，按最近定位）。` +
    (byArea.length - offMap
      ? `其中 ${byArea.length - offMap} 条标在所属属地中心：设备未登记坐标，或车辆尚无定位。`
      : "") +
    (offMap ? `${offMap} 辆车的最近定位在图幅之外，标在所属属地中心。` : "") +
    (unplaced.length ? `另有 ${unplaced.length} 条无坐标也无已知属地，未标注。` : "");
  root.replaceChildren(map, legend);
}
