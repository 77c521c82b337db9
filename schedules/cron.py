"""Cron expressions (five fields) and their due times in a time zone.

croniter matches wall-clock times; this module turns them into instants, so that a daylight-saving
change neither skips nor doubles a run:
- a wall time that does not exist (spring forward, 02:30 on the night clocks jump from 02:00 to 03:00)
  runs once, as far after the jump as it was after 02:00 (03:30 there), unless that instant is
  already a due time of its own (then the two are one run);
- a wall time that happens twice (fall back) runs once, the first time, unless the expression runs
  every hour (hour field `*`): then both hours run, as the clock says they are two hours.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

# Longer than any daylight-saving shift (Antarctica/Troll's is 2 hours).
_WINDOW = timedelta(hours=3)


def cron_problem(expression: str) -> str | None:
    """Why the expression is not a valid five-field cron, or None."""
    if not isinstance(expression, str) or len(expression.split()) != 5:
        return "Give five fields: minute hour day-of-month month day-of-week, e.g. '*/5 * * * *'."
    try:
        croniter(expression).get_next(datetime)
    except (CroniterError, ValueError) as error:
        return f"Not a valid cron expression: {error}"
    return None


def timezone_problem(name: str) -> str | None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"Unknown time zone {name!r}; give an IANA name such as 'UTC' or 'Europe/Paris'."
    return None


def _instants(wall: datetime, zone: ZoneInfo, every_hour: bool) -> list[datetime]:
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    # fold 0's offset larger than fold 1's: the wall time happens twice (fall back). Smaller: it does not
    # exist (spring forward), and fold 0 places it after the jump by as much as it was after the gap's start.
    if every_hour and first.utcoffset() > second.utcoffset():
        return [first.astimezone(UTC), second.astimezone(UTC)]
    return [first.astimezone(UTC)]


def _near_shift(zone: ZoneInfo, instant: datetime) -> bool:
    return (instant - _WINDOW).astimezone(zone).utcoffset() != (instant + _WINDOW).astimezone(zone).utcoffset()


def next_after(expression: str, timezone_name: str, after: datetime) -> datetime:
    """The first due time strictly after `after` (aware), in UTC."""
    zone = ZoneInfo(timezone_name)
    every_hour = expression.split()[1] == "*"
    after = after.astimezone(UTC)
    wall = after.astimezone(zone).replace(tzinfo=None)
    if not _near_shift(zone, after):
        # Far from a shift, wall time order is time order: the first match after `after` is the answer.
        candidate = croniter(expression, wall).get_next(datetime)
        found = next((t for t in _instants(candidate, zone, every_hour) if t > after), None)
        if found is not None and not _near_shift(zone, found):
            return found
    # Near a shift, a later wall time can be an earlier instant and an earlier one a later instant: look at
    # every match from a window before `after` to a window past the first one found, keep the earliest.
    matches = croniter(expression, wall - _WINDOW)
    best = horizon = None
    while horizon is None or candidate <= horizon:
        candidate = matches.get_next(datetime)
        for instant in _instants(candidate, zone, every_hour):
            if instant > after and (best is None or instant < best):
                best = instant
        if best is not None and horizon is None:
            horizon = candidate + 2 * _WINDOW
    return best


def next_times(expression: str, timezone_name: str, after: datetime, count: int = 5) -> list[datetime]:
    times = []
    for _ in range(count):
        after = next_after(expression, timezone_name, after)
        times.append(after)
    return times
