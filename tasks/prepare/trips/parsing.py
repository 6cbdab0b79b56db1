"""One chunk of trip text as typed arrays: times, member types, station ids, ride hashes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from schemas.errors import TripDataError

# Timestamps that name their offset: ...Z, ...+00:00, ...-0500, ...+01.
_AWARE = re.compile(r"(?:Z|[+-]\d\d(?::?\d\d)?)$")
# Formats tried, row by row, on the rare values ISO 8601 parsing refused (early legacy files).
_FALLBACK_FORMATS = ("%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S")


def check_timezone(timezone: str) -> ZoneInfo:
    """The zone named ``timezone`` (an IANA name such as America/New_York), or TripDataError."""
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise TripDataError(
            f"timezone: '{timezone}' is not an IANA time zone name (for example "
            f"America/New_York or Europe/Paris): {error}"
        ) from error


@dataclass(frozen=True)
class ParsedTimes:
    """A column of timestamps: local wall-clock time, the instant, and what did not parse."""

    local: np.ndarray  # datetime64[ns], naive local wall-clock time (NaT where bad)
    instant: np.ndarray  # datetime64[ns]: UTC for timestamps with an offset, else local
    aware: np.ndarray  # bool: the value named its offset
    bad: np.ndarray  # bool: the value did not parse


def _to_local(parsed: pd.Series, timezone: str) -> pd.Series:
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        return parsed.dt.tz_convert(timezone).dt.tz_localize(None)
    return parsed


def _ns(series: pd.Series) -> np.ndarray:
    return series.to_numpy(dtype="datetime64[ns]")


def parse_times(values: pd.Series, timezone: str) -> ParsedTimes:
    """Parse a chunk's timestamps: naive ones are local in ``timezone``, others converted to it."""
    text = values.astype(object)
    try:
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
        aware_kind = isinstance(parsed.dtype, pd.DatetimeTZDtype)
        aware = np.full(len(text), aware_kind)
        local = _ns(_to_local(parsed, timezone))
        instant = (
            _ns(parsed.dt.tz_convert("UTC").dt.tz_localize(None)) if aware_kind else local.copy()
        )
    except (ValueError, TypeError):
        # Naive and offset values (or several offsets) in one chunk: parse each kind apart.
        aware = text.str.contains(_AWARE, na=False).to_numpy(dtype=bool)
        local = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[ns]")
        instant = local.copy()
        if aware.any():
            utc = pd.to_datetime(text[aware], format="ISO8601", errors="coerce", utc=True)
            local[aware] = _ns(_to_local(utc, timezone))
            instant[aware] = _ns(utc.dt.tz_localize(None))
        if (~aware).any():
            naive = pd.to_datetime(text[~aware], format="ISO8601", errors="coerce")
            local[~aware] = _ns(_to_local(naive, timezone))
            instant[~aware] = local[~aware]
    bad = np.isnat(local)
    if bad.any():
        _fallback(text, local, instant, bad)
        bad = np.isnat(local)
    return ParsedTimes(local=local, instant=instant, aware=aware, bad=bad)


def _fallback(text: pd.Series, local: np.ndarray, instant: np.ndarray, bad: np.ndarray) -> None:
    """Try the month/day/year forms on the values ISO 8601 refused (naive local times)."""
    for form in _FALLBACK_FORMATS:
        rows = np.flatnonzero(bad & np.isnat(local))
        if not len(rows):
            return
        parsed = pd.to_datetime(text.iloc[rows], format=form, errors="coerce")
        values = _ns(parsed)
        local[rows] = values
        instant[rows] = values


def ambiguous_local(values: np.ndarray, timezone: str) -> np.ndarray:
    """True where a naive local time falls in an hour the clock repeats or skips (DST)."""
    index = pd.DatetimeIndex(values)
    localized = index.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    return np.asarray(localized.isna()) & ~np.asarray(index.isna())


@dataclass(frozen=True)
class MemberTypes:
    """A column of member types: which rows are registered, and which are neither type."""

    registered: np.ndarray  # bool
    bad: np.ndarray  # bool


def parse_members(
    values: pd.Series, member_values: frozenset[str], casual_values: frozenset[str]
) -> MemberTypes:
    """Classify member types, case and spaces aside (a chunk has only a few distinct ones)."""
    codes, uniques = pd.factorize(values.astype(object), use_na_sentinel=False)
    cleaned = [str(value).strip().lower() for value in uniques]
    is_member = np.array([value in member_values for value in cleaned], dtype=bool)
    is_known = np.array([value in member_values | casual_values for value in cleaned], dtype=bool)
    return MemberTypes(registered=is_member[codes], bad=~is_known[codes])


@dataclass(frozen=True)
class StationIds:
    """A column of start station ids as integers; -1 where there is none or it is not one."""

    ids: np.ndarray  # int64
    missing: np.ndarray  # bool: empty (a dockless trip)
    bad: np.ndarray  # bool: not a whole number >= 0


def parse_stations(values: pd.Series) -> StationIds:
    """Read station ids as whole numbers (31000, '31000', '31000.0'); empty ones are missing."""
    codes, uniques = pd.factorize(values.astype(object), use_na_sentinel=False)
    ids = np.full(len(uniques), -1, dtype=np.int64)
    missing = np.zeros(len(uniques), dtype=bool)
    for index, value in enumerate(uniques):
        text = "" if value is None or value != value else str(value).strip()
        if not text:
            missing[index] = True
            continue
        try:
            number = float(text)
        except ValueError:
            continue
        if number.is_integer() and number >= 0:
            ids[index] = int(number)
    return StationIds(
        ids=ids[codes], missing=missing[codes], bad=(ids[codes] < 0) & ~missing[codes]
    )


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix(values: np.ndarray) -> np.ndarray:
    values = values + _GOLDEN
    values = (values ^ (values >> np.uint64(30))) * _MIX1
    values = (values ^ (values >> np.uint64(27))) * _MIX2
    return values ^ (values >> np.uint64(31))


def ride_hashes(values: pd.Series) -> np.ndarray:
    """64-bit hashes of ride ids (their UTF-8 bytes), the same for a value in any chunk."""
    text = values.astype(object).to_numpy()
    try:
        raw = text.astype("S")
    except UnicodeEncodeError:
        raw = np.char.encode(text.astype(str), "utf-8")
    width = max(raw.dtype.itemsize, 1)
    padded = -(-width // 8) * 8
    raw = raw.astype(f"S{padded}")
    words = raw.view(np.uint64).reshape(len(raw), padded // 8)
    hashes = np.full(len(raw), np.uint64(0x84222325CBF29CE4), dtype=np.uint64)
    # A trailing all-zero word is padding (CSV text holds no NUL), so a chunk's widest id does
    # not change the hash of a shorter one.
    for column in range(words.shape[1]):
        word = words[:, column]
        hashes = np.where(word != 0, _splitmix(hashes ^ word), hashes)
    return hashes
