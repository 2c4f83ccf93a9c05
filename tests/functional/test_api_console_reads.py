"""What the duty console reads beyond the listings' own tests (docs/console.md).

GET /wall answers with an ETag of its bytes and 304 (no body) to a matching If-None-Match, so a duty screen that
polls an unchanged wall every few seconds downloads nothing (docs/api.md "Conditional polling", docs/costs.md
"The duty console's polling"). Authentication still comes first; any change to what the caller sees changes it.

GET /devices gives each fixed device's registered location (the map's points); vehicles have none, but their last
GNSS fix as the ingest keeps it in the device state.
"""

from __future__ import annotations

from chalicelib.adapters.dynamo import DynamoStateStore
from chalicelib.domain.levels import Level
from chalicelib.domain.state import DeviceState
from tests.functional.api_fixtures import Answer, ApiEnv, Http, api_env, http, raise_warning

DUTY = "duty-01"
REGULATOR = "reg-planning-resources"  # pipelines: not hazchem


def etag(answer: Answer) -> str:
    return next(value for name, value in answer.headers.items() if name.lower() == "etag")


def test_an_unchanged_wall_answers_304_without_a_body(http: Http, api_env: ApiEnv) -> None:
    raise_warning(api_env.registry, "E-CP-02", Level.RED)
    first = http.get("/wall?limit=100", DUTY)
    tag = etag(first)
    assert first.status == 200 and first.body["items"] and tag.startswith('"')

    again = http.get("/wall?limit=100", DUTY, headers={"If-None-Match": tag})
    assert again.status == 304 and again.body is None and etag(again) == tag
    weak = http.get("/wall?limit=100", DUTY, headers={"If-None-Match": f'"stale", W/{tag}'})
    assert weak.status == 304  # a proxy that compressed the answer may have weakened the tag

    other = http.get("/wall?limit=100&level=orange", DUTY, headers={"If-None-Match": tag})
    assert other.status == 200 and etag(other) != tag  # another listing, another tag


def test_a_change_in_the_callers_scope_changes_the_tag(http: Http, api_env: ApiEnv) -> None:
    before = etag(http.get("/wall?limit=100", DUTY))
    regulator_before = etag(http.get("/wall?limit=100", REGULATOR))
    raise_warning(api_env.registry, "E-HC-01", Level.ORANGE)  # hazchem: the duty centre's, not this regulator's

    changed = http.get("/wall?limit=100", DUTY, headers={"If-None-Match": before})
    assert changed.status == 200 and etag(changed) != before
    unchanged = http.get("/wall?limit=100", REGULATOR, headers={"If-None-Match": regulator_before})
    assert unchanged.status == 304


def test_the_token_is_checked_before_the_tag(http: Http, api_env: ApiEnv) -> None:
    tag = etag(http.get("/wall?limit=100", DUTY))
    answer = http.get("/wall?limit=100", None, headers={"If-None-Match": tag})
    assert answer.status == 401 and answer.code == "unauthenticated"


def test_devices_carry_their_registered_location_and_vehicles_none(http: Http, api_env: ApiEnv) -> None:
    answer = http.get("/devices?limit=2000", DUTY)
    assert answer.status == 200
    by_id = {device["device_id"]: device for device in answer.body["items"]}
    site = api_env.registry.by_device["CP02-S1-RTU"].location
    assert site is not None and by_id["CP02-S1-RTU"]["location"] == site.model_dump()
    assert all(d["location"] is None for d in by_id.values() if d["sector"] == "road_transport")
    assert all(d["location"] for d in by_id.values() if d["sector"] != "road_transport")


def test_a_vehicle_carries_its_last_gnss_fix_and_a_fixed_device_none(http: Http, api_env: ApiEnv) -> None:
    at = 1_780_000_000.0
    fix = {"lat": 38.98, "lon": 117.71, "at": at}
    vehicle = DeviceState("RT03-V01", last_seq=3, last_ts=at + 30, scratch={"a": 38.98, "o": 117.71, "g": at})
    DynamoStateStore().save_device(vehicle, last_seen=at + 30)
    DynamoStateStore().save_device(DeviceState("RT03-V02", last_seq=1, last_ts=at), last_seen=at)  # no position
    site = DeviceState("CP02-S1-RTU", last_seq=1, last_ts=at, scratch={"a": 1.0, "o": 2.0})  # not a vehicle
    DynamoStateStore().save_device(site, last_seen=at)

    by_id = {device["device_id"]: device for device in http.get("/devices?limit=2000", DUTY).body["items"]}
    assert by_id["RT03-V01"]["last_fix"] == fix and by_id["RT03-V01"]["location"] is None
    assert by_id["RT03-V02"]["last_fix"] is None
    assert by_id["CP02-S1-RTU"]["last_fix"] is None


__all__ = ["api_env", "http"]  # the fixtures this module uses
