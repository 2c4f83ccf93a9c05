// The Binhai New Area's dev zones and streets of the seed (local/seed/binhai.yaml), with the approximate centre of
// each (longitude, latitude; WGS-84, to a few kilometres) for the map. The API names a warning's areas by code only
// and no documented route lists the registry's areas, so their names and places live here.

export const AREAS = {
  TEDA: { name: "天津经济技术开发区", lon: 117.71, lat: 39.06 },
  TJFTZ: { name: "天津港保税区", lon: 117.77, lat: 39.0 },
  BHT: { name: "滨海高新区", lon: 117.54, lat: 39.09 },
  DJ: { name: "东疆综合保税区", lon: 117.84, lat: 39.03 },
  ECO: { name: "中新天津生态城", lon: 117.76, lat: 39.15 },
  XINGANG: { name: "新港街道", lon: 117.73, lat: 38.98 },
  XINHE: { name: "新河街道", lon: 117.65, lat: 38.99 },
  DAGANG: { name: "大港街道", lon: 117.46, lat: 38.84 },
  GULIN: { name: "古林街道", lon: 117.52, lat: 38.8 },
  TANGGU: { name: "塘沽街道", lon: 117.65, lat: 39.03 },
  HANGU: { name: "汉沽街道", lon: 117.8, lat: 39.25 },
  BEITANG: { name: "北塘街道", lon: 117.7, lat: 39.11 },
  TAIPING: { name: "太平镇", lon: 117.3, lat: 38.78 },
  ZHONGTANG: { name: "中塘镇", lon: 117.4, lat: 38.88 },
  XIAOWANGZHUANG: { name: "小王庄镇", lon: 117.42, lat: 38.72 },
  HUJIAYUAN: { name: "胡家园街道", lon: 117.58, lat: 39.02 },
  TAIDA: { name: "泰达街道", lon: 117.68, lat: 39.05 },
};

// The map's frame: the district's bounding box with a margin.
export const BOUNDS = { west: 117.2, east: 118.0, south: 38.62, north: 39.32 };

export function areaName(code) {
  return AREAS[code]?.name || code;
}
