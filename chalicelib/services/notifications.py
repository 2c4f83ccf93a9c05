"""A signed-in user's notifications (the in-app inbox, docs/delivery.md "Inboxes"): the inboxes of the user's role
and scope only — an enterprise user reads the enterprise's, a duty officer the duty centre's, a regulator the
department's, an area user those of the areas; newest first, unread ones or all; marked read once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from chalicelib.domain.delivery import inbox_keys_of
from chalicelib.domain.errors import NotFound, ValidationFailed
from chalicelib.domain.lifecycle import Actor
from chalicelib.services.cursors import decode_cursor, encode_cursor
from chalicelib.services.ports import Inbox, InboxItem

NOT_FOUND = ("notification_not_found", "通知不存在")


@dataclass
class NotificationPage:
    items: list[InboxItem] = field(default_factory=list)
    next_cursor: str | None = None


class Notifications:
    def __init__(self, inbox: Inbox, clock: Callable[[], float]) -> None:
        self._inbox = inbox
        self._clock = clock

    @staticmethod
    def inboxes(actor: Actor) -> list[str]:
        return inbox_keys_of(actor.role, actor.enterprise_id, actor.department, actor.area_codes)

    def page(self, actor: Actor, limit: int, cursor: str | None, unread: bool) -> NotificationPage:
        inboxes = self.inboxes(actor)
        after = None
        if cursor is not None:
            after = decode_cursor(cursor, ("item_id",))["item_id"]  # type: ignore[index]
            if not after.isdigit():
                raise ValidationFailed("invalid_cursor", "分页游标无效")
        if not inboxes:
            return NotificationPage()
        page = self._inbox.page(inboxes, after, limit, unread)
        next_cursor = encode_cursor({"item_id": page.next_key}) if page.next_key else None
        return NotificationPage(page.items, next_cursor)

    def mark_read(self, actor: Actor, item_id: str) -> InboxItem:
        inboxes = self.inboxes(actor)
        if not item_id.isdigit() or not inboxes:
            raise NotFound(*NOT_FOUND)
        item = self._inbox.mark_read(inboxes, item_id, self._clock())
        if item is None:
            raise NotFound(*NOT_FOUND)
        return item
