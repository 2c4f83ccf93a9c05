// A warning's page: GET /warnings/{id} (the warning, its timeline with deliveries and actions, permitted_actions),
// GET /warnings/{id}/audit (the chain verified; duty and admin only) and the duty centre's actions through
// POST /warnings/{id}/actions. A refused action shows the API's Chinese message.

import { currentStage, countdown, overdueStages } from "./wall.js";
import { LEVEL_ZH, dateTime, fill, h, levelCode } from "./ui.js";

const AUDIT_ROLES = new Set(["duty", "admin"]);
const CHANNEL_ZH = { phone: "电话", video: "视频" };
const OUTCOME_ZH = { reached: "已联系上", no_answer: "无人接听" };
const KIND_ZH = { warning_change: "预警通知", reminder: "催办签收", escalation: "升级通知" };
const AUDIENCE_ZH = { enterprise: "企业", duty: "值守中心", regulator: "行业主管部门", area: "属地", emergency: "应急管理局" };
const TIER_ZH = { 1: "一级", 2: "二级", 3: "三级" };

// The form of each action the console takes (docs/api.md "Actions"): fields → the action's body.
const ACTION_FORMS = {
  record_contact: {
    fields: [
      { name: "channel", label: "方式", choices: CHANNEL_ZH },
      { name: "outcome", label: "结果", choices: OUTCOME_ZH },
      { name: "contact_name", label: "联系人", optional: true },
      { name: "note", label: "情况说明", optional: true, long: true },
    ],
  },
  confirm_closure: { fields: [{ name: "note", label: "备注", optional: true }] },
  reject_clear: { fields: [{ name: "note", label: "驳回理由", long: true }] },
  mark_false_alarm: { fields: [{ name: "note", label: "判定依据", long: true }] },
  escalate: {
    fields: [
      { name: "tier", label: "升级至", choices: TIER_ZH, number: true },
      { name: "note", label: "说明", optional: true },
    ],
  },
  archive: { fields: [{ name: "note", label: "备注", optional: true }] },
};

// What the console cannot do for a permitted action (taken in the enterprise or the regulators' apps).
const ELSEWHERE = "请在移动端办理";

export function levelHistory(timeline) {
  return timeline.filter((entry) => {
    const before = levelCode(entry.before?.level);
    const after = levelCode(entry.after?.level);
    return entry.source !== "delivery" && after && before !== after;
  });
}

// The readings the API gives around the raise: the value at the raise and at each level change (no series).
export function readings(warning, timeline) {
  const rows = timeline
    .filter((entry) => entry.data && entry.data.value !== undefined && entry.data.value !== null)
    .map((entry) => ({ at: entry.at, value: entry.data.value, unit: entry.data.unit || warning.unit, what: entry.type_zh }));
  if (!rows.length && warning.value !== null) {
    rows.push({ at: warning.updated_at, value: warning.value, unit: warning.unit, what: "当前读数" });
  }
  return rows;
}

function detailText(entry) {
  const data = entry.data || {};
  const parts = [];
  if (entry.source === "delivery") {
    const audience = String(data.audience || "").split(":")[0];
    parts.push(`${AUDIENCE_ZH[audience] || audience}${KIND_ZH[data.kind] || data.kind || ""}`);
    if (data.attempts) parts.push(`尝试 ${data.attempts} 次`);
  }
  if (data.channel && CHANNEL_ZH[data.channel]) parts.push(CHANNEL_ZH[data.channel]);
  if (data.outcome && OUTCOME_ZH[data.outcome]) parts.push(OUTCOME_ZH[data.outcome]);
  if (data.contact_name) parts.push(`联系人 ${data.contact_name}`);
  if (data.tier) parts.push(`升级至 ${data.tier} 级`);
  if (data.stage) parts.push(`环节 ${data.stage}`);
  for (const key of ["note", "findings", "order", "title"]) if (data[key]) parts.push(String(data[key]));
  // The reason is a code (outcome, tier, clear reason) that the data above usually says already.
  if (entry.reason && !Object.values(data).map(String).includes(entry.reason)) parts.push(entry.reason);
  const before = levelCode(entry.before?.level);
  const after = levelCode(entry.after?.level);
  if (after && before !== after) parts.push(`${LEVEL_ZH[before] || "无"} → ${LEVEL_ZH[after] || after}`);
  return parts.filter(Boolean).join("；");
}

export class WarningPage {
  constructor(api, root) {
    this.api = api;
    this.root = root;
    this.me = null;
    this.ticker = null;
  }

  stop() {
    clearInterval(this.ticker);
  }

  async show(warningId, notice = null) {
    this.stop();
    this.warningId = warningId;
    this.root.replaceChildren(h("p", { className: "muted", textContent: "加载中…" }));
    let detail;
    try {
      detail = await this.api.get(`/warnings/${encodeURIComponent(warningId)}`);
    } catch (error) {
      this.root.replaceChildren(h("p", { className: "error", role: "alert", textContent: error.message }));
      return;
    }
    this.render(detail, notice);
    if (AUDIT_ROLES.has(this.me?.role)) this.verify(warningId);
  }

  render(detail, notice) {
    const w = detail.warning;
    const stage = currentStage(w);
    const late = overdueStages(w);
    const open = !["closed", "archived"].includes(w.status);
    const clock = h("span", { className: "countdown", dataset: { dueAt: String(stage.dueAt), overdue: String(stage.overdue) } });
    fill(this.root,
      h("p", {}, h("a", { href: "#/wall", textContent: "← 返回大屏" })),
      h(
        "section",
        { className: `warning-head level-${w.level}`, dataset: { warningId: w.warning_id } },
        h("h2", {}, h("span", { className: "level-tag", textContent: w.level_zh }), ` ${w.enterprise_name} · ${w.point_name} · ${w.title}`),
        h(
          "dl",
          { className: "facts" },
          fact("编号", w.warning_id),
          fact("状态", w.status_zh, "status"),
          fact("行业", w.sector_zh),
          fact("单元 · 设备", `${w.unit_name} · ${w.device_id}`),
          fact("读数", w.value === null ? "—" : `${w.value}${w.unit || ""}${w.reading_normal ? "（已恢复正常）" : ""}`),
          fact("发布时间", dateTime(w.raised_at)),
          fact("最高级别", LEVEL_ZH[w.peak_level] || w.peak_level),
          open ? fact(`当前环节：${stage.label}`, clock) : null,
          late.length ? fact("超时", `超时：${late.join("、")}`, "overdue") : null,
        ),
      ),
      notice ? h("p", { className: "notice", role: "status", textContent: notice }) : null,
      this.actions(detail),
      h("section", { id: "audit" }, h("h3", { textContent: "审计链校验" }), h("p", { className: "muted", textContent: AUDIT_ROLES.has(this.me?.role) ? "校验中…" : "审计链校验仅限值守中心和管理员" })),
      readingsSection(w, detail.timeline),
      levelSection(detail.timeline),
      timelineSection(detail.timeline),
    );
    const tick = () => {
      const left = Number(clock.dataset.dueAt) - this.api.now();
      const isLate = left < 0 || clock.dataset.overdue === "true";
      clock.textContent = isLate ? `已超时 ${countdown(left)}` : `剩余 ${countdown(left)}`;
      clock.classList.toggle("late", isLate);
    };
    if (open) {
      tick();
      this.ticker = setInterval(tick, 1000);
    }
  }

  async verify(warningId) {
    const section = this.root.querySelector("#audit");
    let report;
    try {
      report = await this.api.get(`/warnings/${encodeURIComponent(warningId)}/audit`);
    } catch (error) {
      section.replaceChildren(h("h3", { textContent: "审计链校验" }), h("p", { className: "error", textContent: error.message }));
      return;
    }
    if (warningId !== this.warningId) return;
    const verdict = report.ok
      ? `完整：已校验 ${report.checked} 条记录（链头 ${report.head_seq}）`
      : `异常：第 ${report.first_bad_seq} 条起${report.reason_zh ? "（" + report.reason_zh + "）" : ""}，已校验 ${report.checked} 条，链头 ${report.head_seq}`;
    section.replaceChildren(
      h("h3", { textContent: "审计链校验" }),
      h("p", { className: report.ok ? "audit-ok" : "audit-bad", dataset: { ok: String(report.ok) }, textContent: verdict }),
    );
  }

  actions(detail) {
    const section = h("section", { id: "actions" }, h("h3", { textContent: "处置操作" }));
    const permitted = detail.permitted_actions || [];
    if (!permitted.length) {
      section.append(h("p", { className: "muted", textContent: "当前无可执行的操作" }));
      return section;
    }
    const error = h("p", { className: "error", id: "action-error", role: "alert" });
    for (const action of permitted) {
      const form = ACTION_FORMS[action.type];
      if (!form) {
        section.append(h("p", { className: "muted", textContent: `${action.zh}：${ELSEWHERE}` }));
        continue;
      }
      section.append(this.actionForm(detail.warning, action, form, error));
    }
    section.append(error);
    return section;
  }

  actionForm(warning, action, form, error) {
    const inputs = {};
    const node = h("form", { className: "action", dataset: { action: action.type } }, h("strong", { textContent: action.zh }));
    for (const field of form.fields) {
      let input;
      if (field.choices) {
        input = h("select", { name: field.name }, Object.entries(field.choices).map(([value, zh]) => h("option", { value, textContent: zh })));
      } else {
        input = h(field.long ? "textarea" : "input", { name: field.name, required: !field.optional, rows: field.long ? 2 : undefined });
      }
      inputs[field.name] = { input, field };
      node.append(h("label", {}, field.label, input));
    }
    node.append(h("button", { type: "submit", textContent: `提交${action.zh}` }));
    node.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = { type: action.type };
      for (const [name, { input, field }] of Object.entries(inputs)) {
        const value = input.value.trim();
        if (field.optional && !value) continue;
        body[name] = field.number ? Number(value) : value;
      }
      error.textContent = "";
      node.querySelector("button").disabled = true;
      try {
        await this.api.post(`/warnings/${encodeURIComponent(warning.warning_id)}/actions`, body);
      } catch (failure) {
        error.textContent = `${action.zh}未成功：${failure.message}`;
        error.dataset.code = failure.code || "";
        node.querySelector("button").disabled = false;
        return;
      }
      await this.show(warning.warning_id, `已${action.zh}`);
    });
    return node;
  }
}

function fact(term, value, className = "") {
  return [h("dt", { textContent: term }), h("dd", { className }, value)];
}

function readingsSection(warning, timeline) {
  const rows = readings(warning, timeline);
  return h(
    "section",
    { id: "readings" },
    h("h3", { textContent: "预警前后读数" }),
    h("p", { className: "muted", textContent: "接口未提供原始读数序列：以下为发布及每次级别变化时的读数" }),
    rows.length ? null : h("p", { textContent: "该预警为事件报警（如泄漏、碰撞），无数值读数" }),
    rows.length === 0 ? null : h(
      "table",
      {},
      h("thead", {}, h("tr", {}, h("th", { textContent: "时间" }), h("th", { textContent: "事件" }), h("th", { textContent: "读数" }))),
      h("tbody", {}, rows.map((row) => h("tr", {}, h("td", { textContent: dateTime(row.at) }), h("td", { textContent: row.what }), h("td", { textContent: `${row.value}${row.unit || ""}` })))),
    ),
  );
}

function levelSection(timeline) {
  const changes = levelHistory(timeline);
  return h(
    "section",
    { id: "levels" },
    h("h3", { textContent: "级别变化" }),
    h(
      "ol",
      { className: "levels" },
      changes.map((entry) => {
        const after = levelCode(entry.after.level);
        const before = levelCode(entry.before?.level);
        return h(
          "li",
          { className: `level-${after}` },
          `${dateTime(entry.at)}  ${entry.type_zh}：${LEVEL_ZH[before] || "无"} → `,
          h("span", { className: "level-tag", textContent: LEVEL_ZH[after] || after }),
        );
      }),
    ),
  );
}

function timelineSection(timeline) {
  return h(
    "section",
    { id: "timeline" },
    h("h3", { textContent: `时间线（${timeline.length} 条，含通知送达与处置操作）` }),
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, ["时间", "事项", "操作人", "角色", "说明", "序号"].map((title) => h("th", { textContent: title })))),
      h(
        "tbody",
        {},
        timeline.map((entry) =>
          h(
            "tr",
            { className: `source-${entry.source}`, dataset: { type: entry.type } },
            h("td", { className: "time", textContent: dateTime(entry.at) }),
            h("td", { textContent: entry.type_zh }),
            h("td", { textContent: entry.actor_name }),
            h("td", { textContent: entry.role_zh }),
            h("td", { textContent: detailText(entry) }),
            h("td", { className: "id", textContent: entry.seq ?? "" }),
          ),
        ),
      ),
    ),
  );
}
