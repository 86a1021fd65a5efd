"""Helpers shared by the chat formats: neutralising formatting characters and safe truncation."""

from __future__ import annotations

import re
from collections.abc import Callable

ZWSP = "\u200b"  # zero-width space: invisible, but breaks a markup token in two
TRUNCATION_MARKER = "\n\n… [truncated by dwbot]"

_WORD = re.compile(r"\w")


def neutralise(text: str, chars: str) -> str:
    """Insert a zero-width space beside each formatting char that could open or close markup.

    Intra-word chars (`ods_orders_di`) and chars beside whitespace (`* * ?` in a cron) cannot
    format, so they are left alone and copy-paste of such values keeps working.
    """
    if not any(c in text for c in chars):
        return text
    out: list[str] = []
    last = len(text) - 1
    for i, c in enumerate(text):
        if c not in chars:
            out.append(c)
            continue
        before = text[i - 1] if i > 0 else " "
        after = text[i + 1] if i < last else " "
        if _WORD.match(before) and _WORD.match(after):
            out.append(c)
            continue
        if not before.isspace():
            out.append(ZWSP)
        out.append(c)
        if not after.isspace():
            out.append(ZWSP)
    return "".join(out)


def split_code_blocks(md: str) -> list[tuple[bool, str]]:
    """Split Markdown into (is_code, text) runs at ``` fences, so converters skip code."""
    parts = re.split(r"(```.*?```)", md, flags=re.DOTALL)
    return [(p.startswith("```") and p.endswith("```") and len(p) >= 6, p) for p in parts if p]


def convert_outside_code(md: str, convert: Callable[[str], str]) -> str:
    return "".join(p if code else convert(p) for code, p in split_code_blocks(md))


def truncate_chars(text: str, limit: int, marker: str = TRUNCATION_MARKER) -> str:
    """Cut to at most `limit` characters with a visible marker, never inside an `&…;` entity."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - len(marker))]
    amp = cut.rfind("&", max(0, len(cut) - 8))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut.rstrip("\\" + ZWSP) + marker


def fit_bytes(text: str, size_of: Callable[[str], int], limit: int) -> str:
    """Longest truncation of `text` for which size_of(text) <= limit (binary search on characters)."""
    if size_of(text) <= limit:
        return text
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if size_of(truncate_chars(text, mid)) <= limit:
            low = mid
        else:
            high = mid - 1
    return truncate_chars(text, low)
