// The wall (值守大屏): the open warnings of the caller's scope from GET /wall, most urgent first as the API orders
// them, coloured by level, with a live countdown to the current stage's stored due time (docs/api.md "Deadlines"),
// filtered by the API's own filters (sector, area, level, status; kept in the URL hash by app.js).

import { AREAS } from "./areas.js";
import { LEVEL_ZH, OPEN_STATUS_ZH, SECTOR_ZH, clockTime, h } from "./ui.js";

export const POLL_S = 3; // issue 14: a change shows within 5 s
export const FILTER_FIELDS = ["sector", "area", "level", "status"];

// The wall's query: the API's comma-separated "any of" filters (docs/api.md "Filters").
export function wallPath(filters = {}) {
  const query = FILTER_FIELDS.filter((field) => filters[field]?.length)
    .map((field) => `&${field}=${filters[field].map(encodeURIComponent).join(",")}`)
    .join("");
  return `/wall?limit=100${query}`;
}

const FILTER_CHOICES = {
  sector: ["行业", SECTOR_ZH],
  level: ["级别", LEVEL_ZH],
  status: ["状态", OPEN_STATUS_ZH],
  area: ["属地", Object.fromEntries(Object.entries(AREAS).map(([code, area]) => [code, area.name]))],
};

// Toggle chips for each filter; `onChange(filters)` gets the new selection (every chip off = no filter).
export function renderFilters(container, filters, onChange) {
  container.replaceChildren();
  for (const [field, [label, choices]] of Object.entries(FILTER_CHOICES)) {
    const chosen = new Set(filters[field] || []);
    const row = h("div", { className: "filter", dataset: { field } }, h("span", { className: "label" }, label));
    for (const [value, zh] of Object.entries(choices)) {
      row.append(
        h("button", {
          type: "button",
          className: `chip${field === "level" ? " level-" + value : ""}`,
          textContent: zh,
          dataset: { value },
          ariaPressed: String(chosen.has(value)),
          onclick: () => {
            const next = new Set(chosen);
            if (next.has(value)) next.delete(value);
            else next.add(value);
            onChange({ ...filters, [field]: [...next] });
          },
        }),
      );
    }
    container.append(row);
  }
  const any = FILTER_FIELDS.some((field) => filters[field]?.length);
  container.append(
    h("button", { type: "button", className: "clear-filters", textContent: "清除筛选", disabled: !any, onclick: () => onChange({}) }),
  );
}

export function currentStage(warning) {
  const due = warning.deadlines;
  const overdue = warning.overdue;
  switch (warning.status) {
    case "raised":
      return { label: "签收", dueAt: due.acknowledge_by, overdue: overdue.acknowledge };
    case "acknowledged":
      return { label: "核实反馈", dueAt: due.verify_by, overdue: overdue.verify };
    case "clear_requested":
      if (due.confirm_by) return { label: "确认消警", dueAt: due.confirm_by, overdue: overdue.confirm };
      return { label: "消警", dueAt: due.clear_by, overdue: overdue.clear };
    default:
      return { label: "消警", dueAt: due.clear_by, overdue: overdue.clear };
  }
}

export function overdueStages(warning) {
  const names = { acknowledge: "签收", verify: "核实反馈", clear: "消警", confirm: "确认消警" };
  return Object.entries(names)
    .filter(([key]) => warning.overdue[key])
    .map(([, zh]) => zh);
}

export function countdown(seconds) {
  const whole = Math.floor(Math.abs(seconds));
  const days = Math.floor(whole / 86400);
  const hours = Math.floor((whole % 86400) / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const secs = whole % 60;
  const two = (n) => String(n).padStart(2, "0");
  const clock = hours || days ? `${two(hours)}:${two(minutes)}:${two(secs)}` : `${two(minutes)}:${two(secs)}`;
  return days ? `${days}天 ${clock}` : clock;
}

const time = clockTime;

function cell(row, text, className = "") {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

export class Wall {
  constructor(api, elements) {
    this.api = api;
    this.el = elements; // {body, count, status, announce}
    this.filters = {};
    this.alarm = null; // sound.js Alarm: a beep for a new red warning where the browser allows
    this.warnings = [];
    this.seen = null; // warning ids shown so far (null until the first load: no announcement for those)
    this.timer = null;
    this.ticker = null;
    this.stopped = true;
    this.generation = 0;
  }

  start() {
    this.stop();
    this.stopped = false;
    this.poll();
    this.ticker = setInterval(() => this.tick(), 1000);
  }

  stop() {
    this.stopped = true;
    this.generation += 1; // a poll under way finds itself outdated: it neither renders nor schedules
    clearTimeout(this.timer);
    clearInterval(this.ticker);
  }

  async poll(generation = this.generation) {
    try {
      const warnings = await this.api.all(wallPath(this.filters));
      if (generation !== this.generation) return;
      this.warnings = warnings;
      this.announce();
      this.render();
      this.onUpdate?.();
      this.el.status.textContent = `最后更新 ${time(this.api.now())}`;
      this.el.status.className = "";
    } catch (error) {
      if (generation !== this.generation) return;
      if (error.status === 401 || error.status === 403) {
        this.stop();
        this.onDenied?.(error);
        return;
      }
      this.el.status.textContent = `连接中断，${POLL_S} 秒后重试（${error.message}）`;
      this.el.status.className = "error";
    }
    if (!this.stopped) this.timer = setTimeout(() => this.poll(generation), POLL_S * 1000);
  }

  // New filters: poll at once; the reds already in the new selection are not announced as new.
  setFilters(filters) {
    if (wallPath(filters) === wallPath(this.filters)) return;
    this.filters = filters;
    this.seen = null;
    if (this.stopped) return;
    this.generation += 1;
    clearTimeout(this.timer);
    this.poll();
  }

  announce() {
    const ids = new Set(this.warnings.map((w) => w.warning_id));
    if (this.seen) {
      const fresh = this.warnings.filter((w) => w.level === "red" && !this.seen.has(w.warning_id));
      if (fresh.length) {
        const first = fresh[0];
        const more = fresh.length > 1 ? `等 ${fresh.length} 条` : "";
        this.el.announce.textContent = `新红色预警${more}：${first.enterprise_name} ${first.title}（${first.warning_id}）`;
        this.el.announce.hidden = false;
        this.el.announce.dataset.warningId = first.warning_id;
        if (this.alarm?.beep()) this.el.announce.dataset.beeps = String(this.alarm.beeps);
        clearTimeout(this.announceTimer);
        this.announceTimer = setTimeout(() => (this.el.announce.hidden = true), 15000);
      }
    }
    this.seen = ids;
  }

  render() {
    const body = this.el.body;
    body.replaceChildren();
    for (const warning of this.warnings) {
      const row = body.insertRow();
      row.className = `level-${warning.level}`;
      row.dataset.warningId = warning.warning_id;
      cell(row, warning.level_zh || LEVEL_ZH[warning.level] || warning.level, "level");
      cell(row, warning.status_zh);
      cell(row, warning.sector_zh);
      cell(row, warning.enterprise_name);
      cell(row, `${warning.point_name} · ${warning.title}`, "what");
      cell(row, warning.value === null ? "—" : `${warning.value}${warning.unit || ""}`, "value");
      const stage = currentStage(warning);
      cell(row, stage.label, "stage");
      const clock = cell(row, "", "countdown");
      clock.dataset.dueAt = String(stage.dueAt);
      clock.dataset.overdue = String(stage.overdue);
      const late = overdueStages(warning);
      cell(row, late.length ? `超时：${late.join("、")}` : "", late.length ? "overdue" : "");
      cell(row, time(warning.raised_at), "time");
      cell(row, "", "id").append(h("a", { href: `#/warning/${encodeURIComponent(warning.warning_id)}`, textContent: warning.warning_id }));
    }
    const filtered = FILTER_FIELDS.some((field) => this.filters[field]?.length);
    this.el.count.textContent = `未闭环预警 ${this.warnings.length} 条${filtered ? "（已筛选）" : ""}`;
    this.tick();
  }

  tick() {
    const now = this.api.now();
    for (const clock of this.el.body.querySelectorAll("td.countdown")) {
      const left = Number(clock.dataset.dueAt) - now;
      const late = left < 0 || clock.dataset.overdue === "true";
      clock.textContent = late ? `已超时 ${countdown(left)}` : `剩余 ${countdown(left)}`;
      clock.classList.toggle("late", late);
    }
  }
}
