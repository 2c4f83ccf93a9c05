// The console's lists besides the wall: device status (GET /devices), outage declarations (GET /declarations, and
// approve/reject for a regulator or the administrator), and the evaluation reports' index (GET /evaluations,
// downloads through GET /evaluations/{id}/download).

import { areaName } from "./areas.js";
import { SECTOR_ZH, dateTime, fill, formatHash, h } from "./ui.js";

export const DEVICE_STATUS_ZH = { online: "在线", offline: "离线", declared: "已申报", never_seen: "从未上线" };
export const DECLARATION_STATUS_ZH = { pending: "待核实", approved: "已核准", rejected: "已驳回", withdrawn: "已撤回", expired: "已到期" };
const PERIOD_KIND_ZH = { month: "月度", quarter: "季度", year: "年度", custom: "自定义时段" };
const COUNT_ZH = { enterprises: "企业", warnings: "预警", device_days: "设备日", priority: "重点关注" };
const DECIDERS = new Set(["regulator", "admin"]);
const DOWNLOADERS = new Set(["duty", "emergency", "admin"]);

function table(headers, rows) {
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, headers.map((title) => h("th", { textContent: title })))),
    h("tbody", {}, rows),
  );
}

// One-choice chips kept in the hash (#/devices?status=offline); "全部" drops the filter.
function statusChips(page, choices, chosen) {
  return h(
    "div",
    { className: "filter" },
    h("span", { className: "label", textContent: "状态" }),
    [["", "全部"], ...Object.entries(choices)].map(([value, zh]) =>
      h("a", {
        className: "chip",
        href: formatHash(page, value ? { status: [value] } : {}),
        textContent: zh,
        ariaPressed: String((chosen || "") === value),
        dataset: { value },
      }),
    ),
  );
}

function failed(root, error) {
  root.replaceChildren(h("p", { className: "error", role: "alert", textContent: error.message }));
}

export async function showDevices(api, root, params) {
  const status = params.status?.[0] || "";
  root.replaceChildren(h("h2", { textContent: "设备在线状态" }), h("p", { className: "muted", textContent: "加载中…" }));
  let devices;
  try {
    devices = await api.all(`/devices?limit=2000${status ? "&status=" + encodeURIComponent(status) : ""}`);
  } catch (error) {
    return failed(root, error);
  }
  const counts = {};
  for (const device of devices) counts[device.status] = (counts[device.status] || 0) + 1;
  const summary = Object.entries(counts)
    .map(([key, n]) => `${DEVICE_STATUS_ZH[key] || key} ${n}`)
    .join(" · ");
  fill(root,
    h("h2", { textContent: "设备在线状态" }),
    statusChips("devices", DEVICE_STATUS_ZH, status),
    h("p", { id: "device-count", textContent: `共 ${devices.length} 台${summary ? "：" + summary : ""}` }),
    table(
      ["设备", "企业", "行业", "点位", "类型", "属地", "状态", "最近读数", "离线起", "申报"],
      devices.map((d) =>
        h(
          "tr",
          { className: `device-${d.status}`, dataset: { deviceId: d.device_id } },
          h("td", { className: "id", textContent: d.device_id }),
          h("td", { textContent: d.enterprise_name }),
          h("td", { textContent: SECTOR_ZH[d.sector] || d.sector }),
          h("td", { textContent: d.point_name }),
          h("td", { textContent: d.kind }),
          h("td", { textContent: d.area_codes.map(areaName).join("、") }),
          h("td", { className: "status", textContent: d.status_zh }),
          h("td", { className: "time", textContent: dateTime(d.last_seen) }),
          h("td", { className: "time", textContent: dateTime(d.offline_since) }),
          h("td", { className: "id", textContent: d.declaration_id || "" }),
        ),
      ),
    ),
  );
}

export async function showDeclarations(api, root, params, me) {
  const status = params.status?.[0] || "";
  root.replaceChildren(h("h2", { textContent: "停传申报" }), h("p", { className: "muted", textContent: "加载中…" }));
  let declarations;
  try {
    declarations = await api.all(`/declarations?limit=100${status ? "&status=" + encodeURIComponent(status) : ""}`);
  } catch (error) {
    return failed(root, error);
  }
  const error = h("p", { className: "error", id: "decision-error", role: "alert" });
  const decide = async (declaration, verb, body) => {
    error.textContent = "";
    try {
      await api.post(`/declarations/${encodeURIComponent(declaration.declaration_id)}/${verb}`, body);
    } catch (failure) {
      error.textContent = `${verb === "approve" ? "核准" : "驳回"}未成功：${failure.message}`;
      error.dataset.code = failure.code || "";
      return;
    }
    await showDeclarations(api, root, params, me);
  };
  const canDecide = DECIDERS.has(me?.role);
  fill(root,
    h("h2", { textContent: "停传申报" }),
    h("p", { className: "muted", textContent: status ? "" : "默认显示待核实与已核准的申报（docs/declarations.md）；核准与驳回由行业主管部门办理" }),
    statusChips("declarations", DECLARATION_STATUS_ZH, status),
    error,
    table(
      ["编号", "企业", "行业", "设备", "原因", "时段", "说明", "状态", "核实", canDecide ? "核实操作" : ""],
      declarations.map((d) => {
        const reason = h("input", { placeholder: "驳回理由", className: "reason" });
        const decision =
          canDecide && d.status === "pending"
            ? h(
                "td",
                { className: "decide" },
                h("button", { type: "button", className: "approve", textContent: "核准", onclick: () => decide(d, "approve", {}) }),
                reason,
                h("button", { type: "button", className: "reject", textContent: "驳回", onclick: () => decide(d, "reject", { reason: reason.value }) }),
              )
            : h("td");
        return h(
          "tr",
          { className: `declaration-${d.status}`, dataset: { declarationId: d.declaration_id } },
          h("td", { className: "id", textContent: d.declaration_id }),
          h("td", { textContent: d.enterprise_name }),
          h("td", { textContent: SECTOR_ZH[d.sector] || d.sector }),
          h("td", { textContent: d.device_ids.join("、") }),
          h("td", { textContent: d.reason_zh }),
          h("td", { className: "time", textContent: `${dateTime(d.starts_at)} — ${dateTime(d.ends_at)}` }),
          h("td", { textContent: d.note }),
          h("td", { className: "status", textContent: d.status_zh + (d.in_effect ? "（生效中）" : "") }),
          h("td", { textContent: d.verified_by ? `${d.verified_by} ${dateTime(d.verified_at)}` : d.rejection_reason || "" }),
          decision,
        );
      }),
    ),
  );
}

export async function showEvaluations(api, root, me) {
  root.replaceChildren(h("h2", { textContent: "评估报告" }), h("p", { className: "muted", textContent: "加载中…" }));
  let reports;
  try {
    reports = (await api.get("/evaluations")).items;
  } catch (error) {
    return failed(root, error);
  }
  const error = h("p", { className: "error", id: "download-error", role: "alert" });
  const canDownload = DOWNLOADERS.has(me?.role);
  const download = async (report, format, button) => {
    error.textContent = "";
    let ticket;
    try {
      ticket = await api.get(`/evaluations/${encodeURIComponent(report.report_id)}/download?format=${format}`);
    } catch (failure) {
      error.textContent = failure.message;
      return;
    }
    // The presigned link lasts ticket.expires_in seconds: fetched on the click, not with the index.
    const link = h("a", { href: ticket.url, className: "download", textContent: `${format.toUpperCase()} 下载链接`, target: "_blank", rel: "noopener" });
    button.replaceWith(link);
    link.click();
  };
  fill(root,
    h("h2", { textContent: "评估报告" }),
    canDownload ? null : h("p", { className: "muted", textContent: "报告全文仅限值守中心、应急管理局和管理员下载" }),
    error,
    reports.length
      ? table(
          ["评估期", "类型", "时段", "生成时间", "统计", "下载"],
          reports.map((r) =>
            h(
              "tr",
              { dataset: { reportId: r.report_id } },
              h("td", { textContent: r.label }),
              h("td", { textContent: PERIOD_KIND_ZH[r.kind] || r.kind }),
              h("td", { className: "time", textContent: `${dateTime(r.start)} — ${dateTime(r.end)}` }),
              h("td", { className: "time", textContent: dateTime(r.generated_at) }),
              h("td", { textContent: Object.entries(r.counts).map(([k, n]) => `${COUNT_ZH[k] || k} ${n}`).join("，") }),
              h(
                "td",
                {},
                canDownload
                  ? r.formats.map((format) => {
                      const button = h("button", { type: "button", className: `download-${format}`, textContent: `下载 ${format.toUpperCase()}` });
                      button.addEventListener("click", () => download(r, format, button));
                      return button;
                    })
                  : null,
              ),
            ),
          ),
        )
      : h("p", { className: "muted", id: "no-reports", textContent: "尚无评估报告" }),
  );
}
