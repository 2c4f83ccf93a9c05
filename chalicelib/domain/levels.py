"""Warning levels and sector codes (DOMAIN.md §1, §2)."""

from __future__ import annotations

from enum import IntEnum, StrEnum


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


class Sector(StrEnum):
    ROAD_TRANSPORT = "road_transport"
    HAZCHEM = "hazchem"
    FIRE = "fire"
    CONSTRUCTION = "construction"
    CHEM_PIPELINE = "chem_pipeline"
    OIL_GAS_PIPELINE = "oil_gas_pipeline"

    @property
    def zh(self) -> str:
        return SECTOR_ZH[self]


SECTOR_ZH = {
    Sector.ROAD_TRANSPORT: "道路运输",
    Sector.HAZCHEM: "危险化学品",
    Sector.FIRE: "消防",
    Sector.CONSTRUCTION: "建筑工地",
    Sector.CHEM_PIPELINE: "危化品管道",
    Sector.OIL_GAS_PIPELINE: "油气管道",
}
