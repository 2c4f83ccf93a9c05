// Small DOM and text helpers shared by the console's pages.

export const LEVEL_ZH = { red: "红色", orange: "橙色", yellow: "黄色", blue: "蓝色" };
export const LEVEL_CODES = ["none", "blue", "yellow", "orange", "red"]; // engine log entries carry numbers
export const LEVEL_COLOURS = { red: "#d4202a", orange: "#f08c00", yellow: "#f2c200", blue: "#1c6fd6" };
export const SECTOR_ZH = {
  road_transport: "道路运输",
  hazchem: "危险化学品",
  fire: "消防",
  construction: "建筑工地",
  chem_pipeline: "危化品管道",
  oil_gas_pipeline: "油气管道",
};
export const OPEN_STATUS_ZH = {
  raised: "待签收",
  acknowledged: "已签收",
  verified: "已核实",
  disposing: "处置中",
  clear_requested: "申请消警",
};

// An element with properties (className, textContent, dataset..., on<event>) and children.
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

// Replace a node's children, leaving out the null/false of conditional parts.
export function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
}

export function levelCode(level) {
  return typeof level === "number" ? LEVEL_CODES[level] || String(level) : level || "";
}

export function clockTime(epochS) {
  return new Date(epochS * 1000).toLocaleTimeString("zh-CN", { hour12: false, timeZone: "Asia/Shanghai" });
}

export function dateTime(epochS) {
  if (epochS === null || epochS === undefined) return "—";
  return new Date(epochS * 1000).toLocaleString("zh-CN", { hour12: false, timeZone: "Asia/Shanghai" });
}

// The #/page?key=a,b hash: the page name, its argument (#/warning/ID) and its query as a map of lists.
export function parseHash(hash) {
  const [path, query = ""] = hash.replace(/^#\/?/, "").split("?");
  const [page = "", ...rest] = path.split("/");
  const params = {};
  for (const [key, value] of new URLSearchParams(query)) {
    params[key] = value.split(",").filter(Boolean);
  }
  return { page: page || "wall", arg: decodeURIComponent(rest.join("/")), params };
}

export function formatHash(page, params = {}) {
  const query = Object.entries(params)
    .filter(([, values]) => values && values.length)
    .map(([key, values]) => `${key}=${values.map(encodeURIComponent).join(",")}`)
    .join("&");
  return `#/${page}${query ? "?" + query : ""}`;
}
