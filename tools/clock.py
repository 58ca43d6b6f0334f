"""The date and time, which a model cannot know, and day arithmetic, which it often gets wrong."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agentflow.core.tool import ToolError, tool


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name that is a directory (Europe)
        raise ToolError(f"{name!r} is not a time zone; use an IANA name such as UTC, Europe/Paris or "
                        "America/New_York") from None


@tool
def now(timezone: Annotated[str, "an IANA time zone such as UTC or Europe/Paris"] = "UTC") -> str:
    """The current date, time and weekday in a time zone."""
    moment = datetime.now(_zone(timezone))
    return f"{moment.isoformat(timespec='seconds')} ({moment.strftime('%A')}, {timezone})"


@tool
def days_between(start: Annotated[date, "the first date, YYYY-MM-DD"],
                 end: Annotated[date, "the second date, YYYY-MM-DD"]) -> int:
    """The number of days from start to end (negative when end is earlier)."""
    return (end - start).days


@tool
def add_days(day: Annotated[date, "a date, YYYY-MM-DD"],
             days: Annotated[int, "days to add (negative: subtract)"]) -> str:
    """The date a number of days after (or before) a date, with its weekday."""
    result = day + timedelta(days=days)
    return f"{result.isoformat()} ({result.strftime('%A')})"
