"""Warning levels (DOMAIN.md §1). Sector codes are the sector registry's: `chalicelib.domain.sectors.Sector`."""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.domain.sectors import Sector as Sector  # noqa: PLC0414 - re-exported, see __getattr__


class Level(IntEnum):
    """Four warning levels; NONE means the reading is normal."""

    NONE = 0
    BLUE = 1
    YELLOW = 2
    ORANGE = 3
    RED = 4

    @property
    def zh(self) -> str:
        return LEVEL_ZH[self]

    @property
    def code(self) -> str:
        return LEVEL_CODES[self]


LEVEL_ZH = {
    Level.NONE: "正常",
    Level.BLUE: "蓝色",
    Level.YELLOW: "黄色",
    Level.ORANGE: "橙色",
    Level.RED: "红色",
}
LEVEL_CODES = {
    Level.NONE: "none",
    Level.BLUE: "blue",
    Level.YELLOW: "yellow",
    Level.ORANGE: "orange",
    Level.RED: "red",
}
LEVEL_BY_CODE = {code: level for level, code in LEVEL_CODES.items()}


def __getattr__(name: str) -> Any:
    """`levels.Sector` for older importers: the enum is the sector registry now (chalicelib.domain.sectors),
    which imports this module, so it is looked up on first use instead of imported here."""
    if name == "Sector":
        from chalicelib.domain.sectors import Sector

        return Sector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
