"""GET /me/notifications and POST /me/notifications/{id}/read: each caller reads only the inboxes of their role and
scope; newest first with a cursor; the unread filter; marked read once."""

from __future__ import annotations

import pytest

from chalicelib.adapters import delivery_store
from chalicelib.adapters.delivery_store import DynamoInbox
from chalicelib.services.ports import InboxItem
from chalicelib.settings import Settings
from local.users import DUTY_USER, enterprise_user
from tests.functional.api_fixtures import ApiEnv, Http, api_env, http  # noqa: F401

pytestmark = pytest.mark.usefixtures("api_env")


@pytest.fixture(scope="module")
def inboxes(api_env: ApiEnv) -> dict[str, str]:  # noqa: F811
    delivery_store.bind(Settings.from_env())
    first, second = api_env.registry.enterprises[0].enterprise_id, api_env.registry.enterprises[1].enterprise_id
    inbox = DynamoInbox()
    for index in range(3):
        inbox.put(
            InboxItem(
                f"enterprise:{first}", "", f"job-e{index}", "reminder", "W1", 4, f"提醒{index}", "", 100.0 + index
            )
        )
    inbox.put(InboxItem(f"enterprise:{second}", "", "job-other", "reminder", "W2", 4, "别家的", "", 200.0))
    inbox.put(InboxItem("duty", "", "job-d", "warning_change", "W1", 4, "值守", "详情", 150.0))
    return {"first": first, "second": second}


def test_an_enterprise_user_reads_its_enterprise_inbox_newest_first_page_by_page(
    http: Http,  # noqa: F811
    inboxes: dict[str, str],
) -> None:
    user = enterprise_user(inboxes["first"])
    first = http.get("/me/notifications?limit=2", user)
    assert first.status == 200
    second = http.get(f"/me/notifications?limit=2&cursor={first.body['next_cursor']}", user)
    texts = [item["text"] for item in first.body["items"] + second.body["items"]]
    assert texts == ["提醒2", "提醒1", "提醒0"]
    assert second.body["next_cursor"] is None
    assert first.body["items"][0]["level"] == "red" and first.body["items"][0]["read_at"] is None


def test_nobody_reads_or_marks_another_inbox(http: Http, inboxes: dict[str, str]) -> None:  # noqa: F811
    duty = http.get("/me/notifications", DUTY_USER).body["items"]
    assert [item["text"] for item in duty] == ["值守"]
    other = http.get("/me/notifications", enterprise_user(inboxes["second"])).body["items"]
    assert [item["text"] for item in other] == ["别家的"]

    answer = http.post(f"/me/notifications/{duty[0]['id']}/read", enterprise_user(inboxes["first"]), None)
    assert (answer.status, answer.code) == (404, "notification_not_found")


def test_marking_read_once_drops_it_from_the_unread_list(http: Http, inboxes: dict[str, str]) -> None:  # noqa: F811
    user = enterprise_user(inboxes["first"])
    newest = http.get("/me/notifications?unread=true&limit=1", user).body["items"][0]
    read = http.post(f"/me/notifications/{newest['id']}/read", user, None)
    again = http.post(f"/me/notifications/{newest['id']}/read", user, None)
    assert read.status == 200 and read.body["read_at"] is not None
    assert again.body["read_at"] == read.body["read_at"]
    unread = [item["id"] for item in http.get("/me/notifications?unread=true", user).body["items"]]
    assert newest["id"] not in unread and len(unread) == 2


def test_a_bad_cursor_or_id_answers_in_the_error_shape(http: Http, inboxes: dict[str, str]) -> None:  # noqa: F811
    user = enterprise_user(inboxes["first"])
    assert http.get("/me/notifications?cursor=nonsense", user).code == "invalid_cursor"
    assert http.post("/me/notifications/not-a-number/read", user, None).code == "notification_not_found"
    assert http.get("/me/notifications").status == 401


def test_a_declarations_notice_names_the_declaration_and_no_warning_or_level(
    http: Http,  # noqa: F811
    api_env: ApiEnv,  # noqa: F811
    inboxes: dict[str, str],
) -> None:
    third = api_env.registry.enterprises[2].enterprise_id
    notice = InboxItem(
        f"enterprise:{third}",
        "",
        "declaration_reminder:DCL-1",
        "declaration_reminder",
        "",
        0,
        "申报将到期",
        "",
        300.0,
        declaration_id="DCL-1",
    )
    DynamoInbox().put(notice)

    [item] = http.get("/me/notifications", enterprise_user(third)).body["items"]
    assert (item["kind"], item["declaration_id"], item["warning_id"], item["level"]) == (
        "declaration_reminder",
        "DCL-1",
        None,
        None,
    )
