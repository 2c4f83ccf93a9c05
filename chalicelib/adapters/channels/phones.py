"""Phone numbers as the channels take them: E.164 in (`+8613800138000`), each provider's own format out."""

from __future__ import annotations

import re

_E164 = re.compile(r"\+[1-9]\d{6,14}")
_MAINLAND_MOBILE = re.compile(r"\+86(1[3-9]\d{9})")


def is_e164(phone: str) -> bool:
    """`+`, a country code and the number: 7 to 15 digits, no spaces or punctuation."""
    return _E164.fullmatch(phone) is not None


def mainland_mobile(phone: str) -> str | None:
    """The 11-digit national number of a mainland China mobile (`+86 1[3-9]x xxxx xxxx`), else None."""
    match = _MAINLAND_MOBILE.fullmatch(phone)
    return match.group(1) if match else None
