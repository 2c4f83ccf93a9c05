"""The duty console's pages beyond the first slice (docs/console.md), in headless Chromium on one platform: the
wall's filters kept in the URL hash and a new red warning announced (with a beep where the browser allows); a
warning's page with its timeline and audit verification, the duty centre's actions and the API's message when one
is refused, and a confirmed clear that takes the warning off the wall; the map; device status; a declaration
approved by its regulator; the evaluation reports' index. Screenshots go to build/test-artifacts/console-*.png.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from local import publish
from local.runtime import LocalPlatform
from local.users import DEMO_PASSWORD, DUTY_USER, bearer, enterprise_user
from local.waiting import wait_until
from tests.e2e import test_console_wall as first_slice

pytestmark = [pytest.mark.e2e, pytest.mark.realtime]

platform = first_slice.platform
browser = first_slice.browser
ARTIFACTS = first_slice.ARTIFACTS
API_TIMEOUT_S = first_slice.API_TIMEOUT_S
WALL_LAG_S = first_slice.WALL_LAG_S
RED_DEVICE = first_slice.RED_DEVICE  # chem_pipeline, E-CP-02, area GULIN
ENTERPRISE = "E-CP-02"
VEHICLE = "RT03-V01"  # bus_intercity, E-RT-03, areas BHT and XINHE
VEHICLE_FIX = {"lat": 39.02, "lon": 117.62}  # between its areas' centres (areas.js), inside the map
REGULATOR = "reg-planning-resources"  # chem_pipeline and oil_gas_pipeline
POLL_MS = 3000  # wall.js POLL_S
EVALUATION_TIMEOUT_S = 180.0  # an on-demand run through the evaluation queue: seconds quiet, minutes starved


def call(platform: LocalPlatform, user: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {**bearer(user), "Content-Type": "application/json"}
    request = urllib.request.Request(f"{platform.api_url}{path}", data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def raise_red(platform: LocalPlatform, device_id: str) -> dict[str, Any]:
    """Publish a confirmed leak on a pipeline RTU and wait for its open red warning (one device per test: a device
    whose leak is still latched raises no second warning)."""
    message = publish.build(publish.parse_args(["--device", device_id, "--events", '[{"code": "npw_leak"}]']))
    assert publish.publish(message, "127.0.0.1", platform.broker.port)

    def raised() -> dict[str, Any]:
        items = call(platform, DUTY_USER, "GET", "/wall?limit=100")["items"]
        return next((w for w in items if w["device_id"] == device_id and w["level"] == "red"), {})

    return wait_until(raised, timeout_s=API_TIMEOUT_S, what=f"the red warning of {device_id}")


def raise_vehicle_red(platform: LocalPlatform) -> dict[str, Any]:
    """An abnormal driver reported with the vehicle's position (red at once), and its last fix in GET /devices
    (the ingest writes the device state after the warning)."""
    metrics = json.dumps({"speed_kmh": 40.0, **VEHICLE_FIX})
    events = '[{"code": "abnormal_driver", "level": 2}]'
    message = publish.build(publish.parse_args(["--device", VEHICLE, "--metrics", metrics, "--events", events]))
    assert publish.publish(message, "127.0.0.1", platform.broker.port)

    def raised() -> dict[str, Any]:
        items = call(platform, DUTY_USER, "GET", "/wall?limit=100")["items"]
        return next((w for w in items if w["device_id"] == VEHICLE and w["level"] == "red"), {})

    def fixed() -> dict[str, Any]:
        devices = call(platform, DUTY_USER, "GET", "/devices?limit=2000&enterprise_id=E-RT-03")["items"]
        return next((d["last_fix"] for d in devices if d["device_id"] == VEHICLE and d["last_fix"]), {})

    warning = wait_until(raised, timeout_s=API_TIMEOUT_S, what=f"the red warning of {VEHICLE}")
    fix = wait_until(fixed, timeout_s=API_TIMEOUT_S, what=f"the last fix of {VEHICLE}")
    assert {"lat": fix["lat"], "lon": fix["lon"]} == VEHICLE_FIX
    return warning


def signed_in(browser: Any, platform: LocalPlatform, user: str, hash_: str = "") -> Any:
    page = first_slice._signed_in_page(browser, platform, user)
    page.wait_for_selector("#console:not([hidden])", timeout=API_TIMEOUT_S * 1000)
    if hash_:
        page.evaluate("hash => { location.hash = hash; }", hash_)
    return page


def shoot(page: Any, name: str, *, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=full_page)


def test_filters_live_in_the_hash_and_a_new_red_is_announced_with_sound(
    platform: LocalPlatform, browser: Any
) -> None:
    page = signed_in(browser, platform, DUTY_USER, "#/wall?sector=chem_pipeline&level=red")
    page.wait_for_selector('#filters [data-field="sector"] [data-value="chem_pipeline"][aria-pressed="true"]')
    assert page.get_attribute('#filters [data-field="level"] [data-value="red"]', "aria-pressed") == "true"
    assert page.inner_text("#sound") == "声音：开"  # the sign-in click allowed the page's sound

    warning = raise_red(platform, RED_DEVICE)
    row = f'#wall-body tr[data-warning-id="{warning["warning_id"]}"]'
    page.wait_for_selector(row, timeout=WALL_LAG_S * 1000)
    page.wait_for_selector(f'#announce:not([hidden])[data-warning-id="{warning["warning_id"]}"]')
    assert "新红色预警" in page.inner_text("#announce")
    assert page.get_attribute("#announce", "data-beeps") == "1"
    assert "（已筛选）" in page.inner_text("#count")
    shoot(page, "wall-filtered")

    page.click('#filters [data-field="sector"] [data-value="hazchem"]')  # any of chem_pipeline, hazchem
    page.wait_for_function("() => location.hash.includes('sector=chem_pipeline,hazchem')")
    page.click('#filters [data-field="sector"] [data-value="chem_pipeline"]')  # hazchem alone: the row leaves
    page.wait_for_selector(row, state="detached", timeout=WALL_LAG_S * 1000)
    assert page.url.endswith("#/wall?sector=hazchem&level=red")

    page.reload()  # the bookmark: the same filters after a reload (the tab stays signed in)
    page.wait_for_selector('#filters [data-field="sector"] [data-value="hazchem"][aria-pressed="true"]')
    chem_pipeline = '#filters [data-field="sector"] [data-value="chem_pipeline"]'
    assert page.get_attribute(chem_pipeline, "aria-pressed") == "false"
    page.click("#filters .clear-filters")
    page.wait_for_selector(row, timeout=WALL_LAG_S * 1000)
    assert page.url.endswith("#/wall")
    page.close()


def test_a_warnings_page_shows_its_history_and_takes_the_duty_centres_actions(
    platform: LocalPlatform, browser: Any
) -> None:
    warning = raise_red(platform, "CP02-S2-RTU")
    warning_id = warning["warning_id"]
    page = signed_in(browser, platform, DUTY_USER)
    page.click(f'#wall-body tr[data-warning-id="{warning_id}"] td.id a')
    page.wait_for_selector(f'.warning-head[data-warning-id="{warning_id}"]')
    assert page.inner_text(".warning-head .level-tag") == "红色"
    page.wait_for_selector('#audit [data-ok="true"]')
    assert "完整" in page.inner_text("#audit")
    assert page.locator("#timeline tbody tr").count() >= 1
    assert page.locator("#levels li.level-red").count() == 1
    assert "预警前后读数" in page.inner_text("#readings")

    contact = '#actions form[data-action="record_contact"]'
    page.select_option(f"{contact} select[name=channel]", "video")
    page.select_option(f"{contact} select[name=outcome]", "reached")
    page.fill(f"{contact} input[name=contact_name]", "王工")
    page.click(f"{contact} button[type=submit]")
    page.wait_for_selector(".notice")
    assert "已" in page.inner_text(".notice")
    page.wait_for_selector('#timeline tr[data-type="record_contact"]')
    assert "视频" in page.inner_text('#timeline tr[data-type="record_contact"]')

    escalate = '#actions form[data-action="escalate"]'
    page.select_option(f"{escalate} select[name=tier]", "1")
    page.click(f"{escalate} button[type=submit]")
    page.wait_for_selector('#timeline tr[data-type="escalate"]')
    page.select_option(f"{escalate} select[name=tier]", "1")
    page.click(f"{escalate} button[type=submit]")  # up only: the API refuses, the page says why in Chinese
    page.wait_for_selector('#action-error[data-code="already_escalated"]')
    refusal = page.inner_text("#action-error")
    assert "未成功" in refusal and any("\u4e00" <= ch <= "\u9fff" for ch in refusal.split("：", 1)[1])
    shoot(page, "warning")
    page.close()


def test_the_duty_centre_confirms_a_clear_and_the_warning_leaves_the_wall(
    platform: LocalPlatform, browser: Any
) -> None:
    warning = raise_red(platform, "CP01-S1-RTU")
    warning_id = warning["warning_id"]
    actions = f"/warnings/{warning_id}/actions"
    enterprise = enterprise_user(warning["enterprise_id"])
    for body in (
        {"type": "acknowledge"},
        {"type": "verify", "outcome": "false_alarm"},
        {"type": "request_clear", "reason": "false_alarm", "text": "管道压力波动，现场核实无泄漏"},
    ):
        call(platform, enterprise, "POST", actions, body)

    page = signed_in(browser, platform, DUTY_USER)
    row = f'#wall-body tr[data-warning-id="{warning_id}"]'
    page.wait_for_selector(row)
    assert page.inner_text(f"{row} td.stage") == "确认消警"
    page.goto(f"{platform.api_url}/console/#/warning/{warning_id}")
    confirm = '#actions form[data-action="confirm_closure"]'
    page.wait_for_selector(confirm)
    page.click(f"{confirm} button[type=submit]")
    page.wait_for_selector(".notice")
    # closed, or already archived: a closed warning's archive falls due at its closure and the archive timer's
    # message is taken at once (long polling), so the page may read the warning after either
    status = page.inner_text(".warning-head dd.status")
    assert "已消警" in status or "已归档" in status, status
    page.click('#nav a[data-page="wall"]')
    page.wait_for_selector(row, state="detached", timeout=WALL_LAG_S * 1000)
    page.close()


def test_the_map_draws_open_warnings_by_level_without_tiles(platform: LocalPlatform, browser: Any) -> None:
    open_red = raise_red(platform, RED_DEVICE)  # open since the first test, or raised now
    vehicle_red = raise_vehicle_red(platform)
    page = browser.new_page(viewport={"width": 1500, "height": 1000}, locale="zh-CN")
    wall_statuses: list[int] = []
    page.on("response", lambda answer: "/wall?" in answer.url and wall_statuses.append(answer.status))
    page.goto(f"{platform.api_url}/console/#/map")
    page.fill("#username", DUTY_USER)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#sign-in-form button[type=submit]")
    point = f'#map-svg a[data-warning-id="{open_red["warning_id"]}"] .point'
    page.wait_for_selector(point, timeout=WALL_LAG_S * 1000)
    assert page.get_attribute(point, "fill") == "#d4202a"
    # at the device's registered location once GET /devices has answered (seconds on a busy machine)
    located = f'#map-svg a[data-warning-id="{open_red["warning_id"]}"][data-located="true"] .point'
    page.wait_for_selector(located, timeout=API_TIMEOUT_S * 1000)
    assert page.get_attribute(located.removesuffix(" .point"), "data-placed-by") == "site"
    # the vehicle's triangle at its last GNSS fix, not at its area's centre
    vehicle = f'#map-svg a[data-warning-id="{vehicle_red["warning_id"]}"][data-placed-by="fix"]'
    page.wait_for_selector(f"{vehicle} polygon.point", timeout=API_TIMEOUT_S * 1000)
    assert "最近定位" in (page.text_content(f"{vehicle} title") or "")
    assert "三角：车辆，按最近定位" in (page.text_content("#map-legend") or "")
    assert page.locator("#map-svg image").count() == 0  # nothing fetched: no tiles, no external images
    assert "古林街道" in (page.text_content("#map-svg") or "")
    shoot(page, "map")
    # The wall is polled with its last ETag: an unchanged wall answers 304 and the page keeps what it has.
    with page.expect_response(lambda answer: "/wall?" in answer.url and answer.status == 304, timeout=3 * POLL_MS):
        pass  # the next poll of an unchanged wall
    assert wall_statuses[0] == 200
    assert page.locator(point).count() == 1
    page.click(f'#map-svg a[data-warning-id="{open_red["warning_id"]}"]')
    page.wait_for_selector(f'.warning-head[data-warning-id="{open_red["warning_id"]}"]')
    page.close()


def test_device_status_and_a_declaration_approved_by_its_regulator(platform: LocalPlatform, browser: Any) -> None:
    now = time.time()
    declared = call(
        platform,
        enterprise_user(ENTERPRISE),
        "POST",
        "/declarations",
        {
            "device_ids": [RED_DEVICE],
            "reason": "planned_stop",
            "starts_at": now + 3600,
            "ends_at": now + 7200,
            "note": "阀室检修",
        },
    )
    declaration_id = declared["declaration_id"]

    page = signed_in(browser, platform, DUTY_USER, "#/devices?status=never_seen")
    page.wait_for_selector("#device-count")
    assert page.get_attribute('#page-devices .chip[data-value="never_seen"]', "aria-pressed") == "true"
    assert page.locator("#page-devices tbody tr").count() > 0
    assert page.locator("#page-devices tbody tr:not(.device-never_seen)").count() == 0
    shoot(page, "devices", full_page=False)
    page.evaluate("() => { location.hash = '#/declarations'; }")
    row = f'#page-declarations tr[data-declaration-id="{declaration_id}"]'
    page.wait_for_selector(row)
    assert page.locator(f"{row} button.approve").count() == 0  # the duty centre sees, the regulator decides
    page.close()

    page = signed_in(browser, platform, REGULATOR, "#/declarations")
    page.wait_for_selector(f"{row} button.reject")
    page.click(f"{row} button.reject")  # no reason: the API refuses, in Chinese
    page.wait_for_selector("#decision-error:not(:empty)")
    assert "驳回未成功" in page.inner_text("#decision-error")
    page.click(f"{row} button.approve")
    page.wait_for_function(
        "selector => document.querySelector(selector)?.classList.contains('declaration-approved')", arg=row
    )
    assert "已核准" in page.inner_text(f"{row} td.status")
    shoot(page, "declarations")
    page.close()


def test_the_evaluation_reports_index_with_its_downloads(platform: LocalPlatform, browser: Any) -> None:
    end = int(time.time()) - 60
    try:
        window = {"kind": "custom", "start": end - 60, "end": end}
        queued = call(platform, DUTY_USER, "POST", "/evaluations", window)
    except urllib.error.HTTPError as error:  # a stage without the evaluation bucket says so
        pytest.fail(f"POST /evaluations: {error.code} {error.read()!r}")
    # the run is asynchronous (202): the index offers the downloads once it is done
    path = f"/evaluations/{queued['report_id']}"

    def done() -> bool:
        try:
            return bool(call(platform, DUTY_USER, "GET", path)["entry"]["status"] == "done")
        except urllib.error.HTTPError as error:  # not readable until its first run is stored
            if error.code != 404:
                raise
            return False

    wait_until(done, timeout_s=EVALUATION_TIMEOUT_S, what="the on-demand evaluation done")
    page = signed_in(browser, platform, DUTY_USER, "#/evaluations")
    page.wait_for_selector("#page-evaluations tbody tr")
    button = "#page-evaluations tbody tr button.download-html"
    with page.expect_popup() as popup:
        page.click(button)
    link = page.locator("#page-evaluations a.download").first
    assert link.get_attribute("href", timeout=5000).startswith("http")
    popup.value.close()
    shoot(page, "evaluations")
    page.close()
