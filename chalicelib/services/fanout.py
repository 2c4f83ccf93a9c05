"""Who receives a warning change, and what they read (DOMAIN.md §4)."""

from __future__ import annotations

from collections.abc import Sequence

from chalicelib.domain.catalog import Policy
from chalicelib.domain.changes import DATA_QUALITY, ChangeKind, WarningChange
from chalicelib.domain.policy import Audience, Route
from chalicelib.domain.registry import Enterprise, Person
from chalicelib.domain.texts import app_text, change_text
from chalicelib.services.ports import Notification, Recipient


def route_for(policy: Policy, change: WarningChange) -> Route:
    routing = policy.routing
    if change.risk_type == DATA_QUALITY:
        return Route(audiences=routing.data_quality_audiences, regulators=(), areas=())
    lowering = change.kind in (ChangeKind.LEVEL_DOWN, ChangeKind.RECOVER)
    level = change.previous_level if change.kind is ChangeKind.RECOVER else change.level
    return routing.route(level, change.sector, change.area_codes, lowering=lowering)


def recipients(route: Route, enterprise: Enterprise | None, people: Sequence[Person]) -> tuple[Recipient, ...]:
    found: list[Recipient] = []
    seen: set[str] = set()

    def add(audience: Audience, name: str, phone: str) -> None:
        if phone not in seen:
            seen.add(phone)
            found.append(Recipient(audience.value, name, phone))

    for audience in route.audiences:
        if audience is Audience.ENTERPRISE:
            for contact in enterprise.contacts if enterprise else ():
                add(audience, contact.name, contact.phone)
            continue
        for person in people:
            if person.role != audience.value:
                continue
            if audience is Audience.REGULATOR and person.department not in route.regulators:
                continue
            if audience is Audience.AREA and not set(person.area_codes) & set(route.areas):
                continue
            add(audience, person.name, person.phone)
    return tuple(found)


def notification_for(
    policy: Policy, change: WarningChange, enterprise: Enterprise | None, people: Sequence[Person]
) -> Notification:
    route = route_for(policy, change)
    deadline = policy.deadlines.for_level(change.level or change.previous_level)
    text = change_text(change, deadline)
    return Notification(
        change=change,
        route=route,
        sms=text.render(),
        text=text,
        app=app_text(change, deadline),
        recipients=recipients(route, enterprise, people),
    )
