"""One trip file's counts per day or hour (and station), read in chunks, checked as it goes."""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from schemas.errors import SourceError, TripDataError
from schemas.records import Granularity
from tasks.prepare.trips.files import open_trip_members
from tasks.prepare.trips.layouts import TripLayout, clean_column, detect_layout
from tasks.prepare.trips.parsing import (
    ParsedTimes,
    ambiguous_local,
    check_timezone,
    parse_members,
    parse_stations,
    parse_times,
    ride_hashes,
)
from tasks.prepare.trips.problems import Problems

CHUNK_ROWS = 1 << 19  # 524,288 trips: about 150 MB of text columns at a time
DAY = np.timedelta64(1, "D")
DST_SLACK = np.timedelta64(1, "h")  # a clock turned back an hour makes local ends look early
COUNT_NAMES = ("casual", "registered", "cnt")


@dataclass(frozen=True, eq=False)
class TripCounts:
    """One trip file's counts and what was learnt reading it.

    ``counts`` has ``dteday`` (datetime64, midnight of the local date), ``hr`` (hourly),
    ``station`` (per station) and the int64 columns ``casual``, ``registered``, ``cnt``, one
    row per date (hour, station) that had trips, sorted. ``first_start``/``last_start`` are
    local wall-clock times (None for a file without trips). ``ride_hashes`` are the sorted
    64-bit hashes of the file's ride ids (current layout; empty for legacy files), for
    ``duplicate_rides`` across files.
    """

    file: str
    granularity: Granularity
    stations: bool
    counts: pd.DataFrame
    first_start: pd.Timestamp | None
    last_start: pd.Timestamp | None
    trips: int
    warnings: tuple[str, ...] = ()
    ride_hashes: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))


def key_columns(granularity: Granularity, stations: bool) -> list[str]:
    """The columns that identify a row of counts: dteday, then hr and station when asked."""
    return [
        "dteday",
        *(["hr"] if granularity == "hour" else []),
        *(["station"] if stations else []),
    ]


class _FileReader:
    """The state of reading one trip file: partial counts, problems, hashes, first and last."""

    def __init__(
        self, path: Path, timezone: str, granularity: Granularity, stations: bool, chunk_rows: int
    ) -> None:
        self.path = path
        self.timezone = timezone
        self.granularity = granularity
        self.stations = stations
        self.chunk_rows = chunk_rows
        self.problems = Problems()
        self.partials: list[pd.DataFrame] = []
        self.hashes: list[np.ndarray] = []
        self.hash_lines: list[np.ndarray] = []
        self.hash_places: list[str] = []
        self.first: np.datetime64 | None = None
        self.last: np.datetime64 | None = None
        self.trips = 0
        self.no_station = 0

    def read_member(self, where: str, stream: io.TextIOWrapper) -> None:
        """Read one CSV (a file or a zip member) chunk by chunk."""
        header_line = stream.readline()
        header = next(csv.reader([header_line]), []) if header_line.strip() else []
        names = [clean_column(name) for name in header]
        layout = detect_layout(names, where)
        reader = pd.read_csv(
            stream,
            header=None,
            names=names,
            usecols=list(layout.needed),
            dtype=object,
            na_filter=False,
            skip_blank_lines=False,
            chunksize=self.chunk_rows,
            engine="c",
        )
        first_row = 0
        try:
            for chunk in reader:
                self.read_chunk(where, layout, chunk, first_row)
                first_row += len(chunk)
        except pd.errors.ParserError as error:
            raise TripDataError(
                f"{where}: not a well-formed CSV after line {first_row + 1} ({error})", file=where
            ) from error

    def read_chunk(
        self, where: str, layout: TripLayout, chunk: pd.DataFrame, first_row: int
    ) -> None:
        """Check one chunk's trips and add their counts."""
        # The header is line 1, so the chunk's row i is line first_row + i + 2.
        lines = np.arange(first_row + 2, first_row + 2 + len(chunk), dtype=np.int64)
        blank = (chunk[layout.start] == "").to_numpy()
        if blank.any():  # an empty line (often the last one) is no trip
            blank[blank] = (chunk.loc[blank, list(layout.needed)] == "").all(axis=1).to_numpy()
            chunk, lines = chunk[~blank].reset_index(drop=True), lines[~blank]
        start = parse_times(chunk[layout.start], self.timezone)
        end = parse_times(chunk[layout.end], self.timezone)
        members = parse_members(chunk[layout.member], layout.member_values, layout.casual_values)
        bad = start.bad | end.bad | members.bad
        self.problems.add_rows(
            where, "start", layout.start, lines, chunk[layout.start], start.bad,
            "does not parse as a date and time (expected YYYY-MM-DD HH:MM:SS, optionally "
            "with a Z or +HH:MM offset)",
        )  # fmt: skip
        self.problems.add_rows(
            where, "end", layout.end, lines, chunk[layout.end], end.bad,
            "does not parse as a date and time (expected YYYY-MM-DD HH:MM:SS, optionally "
            "with a Z or +HH:MM offset)",
        )  # fmt: skip
        self.problems.add_rows(
            where, "member", layout.member, lines, chunk[layout.member], members.bad,
            f"is neither a member nor a casual rider (expected one of "
            f"{', '.join(sorted(layout.member_values | layout.casual_values))})",
        )  # fmt: skip
        self._check_durations(where, layout, chunk, lines, start, end, bad)
        station_ids = None
        if self.stations:
            parsed = parse_stations(chunk[layout.station])
            self.problems.add_rows(
                where, "station", layout.station, lines, chunk[layout.station], parsed.bad,
                "is not a whole-number station id (per-station counts need integer ids)",
            )  # fmt: skip
            bad = bad | parsed.bad
            self.no_station += int((parsed.missing & ~bad).sum())
            bad = bad | parsed.missing
            station_ids = parsed.ids
        if layout.ride_id is not None:
            self.hashes.append(ride_hashes(chunk[layout.ride_id]))
            self.hash_lines.append(lines)
            self.hash_places.append(where)
        if self.problems.failed:
            return  # keep checking, stop counting: the file will be refused
        self._count(start.local, members.registered, station_ids, ~bad)

    def _check_durations(
        self,
        where: str,
        layout: TripLayout,
        chunk: pd.DataFrame,
        lines: np.ndarray,
        start: ParsedTimes,
        end: ParsedTimes,
        bad: np.ndarray,
    ) -> None:
        duration = end.instant - start.instant
        negative = ~bad & (duration < np.timedelta64(0, "s"))
        if negative.any():
            # Naive local times in the hour a clock repeats: 01:55 EDT to 01:05 EST is fine.
            rows = np.flatnonzero(negative)
            naive = ~start.aware[rows] & ~end.aware[rows]
            repeated = ambiguous_local(start.local[rows], self.timezone) | ambiguous_local(
                end.local[rows], self.timezone
            )
            excused = naive & repeated & (-duration[rows] <= DST_SLACK)
            negative[rows[excused]] = False
        if negative.any():
            values = chunk[layout.start].astype(str) + " to " + chunk[layout.end].astype(str)
            self.problems.add_rows(
                where, "order", f"{layout.start}, {layout.end}", lines, values, negative,
                "ends before it starts",
            )  # fmt: skip
        long = ~bad & (duration > DAY)
        if long.any():
            first = int(np.flatnonzero(long)[0])
            self.problems.warn_long(
                where, int(long.sum()), int(lines[first]),
                f"{chunk[layout.start].iloc[first]} to {chunk[layout.end].iloc[first]}",
            )  # fmt: skip

    def _count(
        self,
        local: np.ndarray,
        registered: np.ndarray,
        station_ids: np.ndarray | None,
        keep: np.ndarray,
    ) -> None:
        local, registered = local[keep], registered[keep]
        if not len(local):
            return
        self.trips += len(local)
        low, high = local.min(), local.max()
        self.first = low if self.first is None else min(self.first, low)
        self.last = high if self.last is None else max(self.last, high)
        unit = "h" if self.granularity == "hour" else "D"
        frame = {"time": local.astype(f"datetime64[{unit}]").astype(np.int64)}
        if station_ids is not None:
            frame["station"] = station_ids[keep]
        frame["registered"] = registered.astype(np.int64)
        grouped = pd.DataFrame(frame).groupby(list(frame)[:-1], sort=False)["registered"]
        self.partials.append(grouped.agg(["sum", "size"]).reset_index())

    def counts(self) -> pd.DataFrame:
        """The file's counts, one row per date (hour, station), sorted."""
        columns = ["time", *(["station"] if self.stations else [])]
        if self.partials:
            joined = pd.concat(self.partials, ignore_index=True)
            summed = joined.groupby(columns, sort=True)[["sum", "size"]].sum().reset_index()
        else:
            summed = pd.DataFrame(
                {name: np.empty(0, np.int64) for name in [*columns, "sum", "size"]}
            )
        unit = "h" if self.granularity == "hour" else "D"
        moments = summed["time"].to_numpy(dtype=np.int64).astype(f"datetime64[{unit}]")
        result = {"dteday": moments.astype("datetime64[D]").astype("datetime64[ns]")}
        if self.granularity == "hour":
            result["hr"] = (moments - moments.astype("datetime64[D]")).astype(np.int64)
        if self.stations:
            result["station"] = summed["station"].to_numpy(dtype=np.int64)
        registered = summed["sum"].to_numpy(dtype=np.int64)
        total = summed["size"].to_numpy(dtype=np.int64)
        result.update(casual=total - registered, registered=registered, cnt=total)
        return pd.DataFrame(result)


def aggregate_trip_file(
    path: Path | str,
    timezone: str = "America/New_York",
    granularity: Granularity = "day",
    stations: bool = False,
    chunk_rows: int = CHUNK_ROWS,
) -> TripCounts:
    """Count one trip file's trips by local start date or hour (and start station).

    Reads every CSV of the file (.csv, .csv.gz, each CSV member of a .zip) ``chunk_rows``
    trips at a time. Naive timestamps are wall-clock times in ``timezone``; ones with an
    offset (Z, +00:00) are converted to it. Raises TripDataError, one paragraph per problem
    (file, member, line, value): a timestamp that does not parse, an end before its start,
    a member type that is neither, a ride_id seen twice in the file (and, with ``stations``,
    a station id that is not a whole number). Durations over a day are warnings.
    """
    path = Path(path)
    check_timezone(timezone)
    reader = _FileReader(path, timezone, granularity, stations, chunk_rows)
    try:
        for where, stream in open_trip_members(path):
            reader.read_member(where, stream)
    except (UnicodeDecodeError, zlib.error, EOFError, zipfile.BadZipFile, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise SourceError(f"{path}: no such trip file") from error
        raise SourceError(f"{path}: cannot be read ({error})") from error
    hashes = _check_duplicates(reader)
    if reader.problems.failed:
        raise TripDataError.from_problems(str(path), reader.problems.paragraphs())
    warnings = list(reader.problems.warnings())
    if reader.no_station:
        warnings.append(
            f"{path}: {reader.no_station} trip(s) have no start station (dockless); they are "
            "left out of the per-station counts"
        )
    return TripCounts(
        file=str(path),
        granularity=granularity,
        stations=stations,
        counts=reader.counts(),
        first_start=None if reader.first is None else pd.Timestamp(reader.first),
        last_start=None if reader.last is None else pd.Timestamp(reader.last),
        trips=reader.trips,
        warnings=tuple(warnings),
        ride_hashes=hashes,
    )


def _check_duplicates(reader: _FileReader) -> np.ndarray:
    """Sort the file's ride hashes; report each ride_id seen twice (with both lines)."""
    if not reader.hashes:
        return np.empty(0, dtype=np.uint64)
    hashes = np.concatenate(reader.hashes)
    lines = np.concatenate(reader.hash_lines)
    places = np.concatenate(
        [np.full(len(h), i, dtype=np.int32) for i, h in enumerate(reader.hashes)]
    )
    order = np.argsort(hashes, kind="stable")
    hashes = hashes[order]
    repeats = np.flatnonzero(hashes[1:] == hashes[:-1]) + 1
    if len(repeats):
        pairs = [(order[i - 1], order[i]) for i in repeats[: reader.problems.shown]]
        values = _ride_ids_at(
            reader, {int(index) for pair in pairs for index in pair}, lines, places
        )
        for first, second in pairs:
            where = reader.hash_places[places[second]]
            earlier = reader.hash_places[places[first]]
            place = "" if earlier == where else f" of {earlier}"
            reader.problems.fail(
                f"{where}, line {lines[second]}: column ride_id: the ride "
                f"'{values.get(int(second), '?')}' appeared before, on line {lines[first]}"
                f"{place}; every ride_id must be unique"
            )
        reader.problems.more("duplicate", max(0, len(repeats) - reader.problems.shown))
    distinct = np.ones(len(hashes), dtype=bool)
    distinct[1:] = hashes[1:] != hashes[:-1]
    return hashes[distinct]


def _ride_ids_at(
    reader: _FileReader, wanted: set[int], lines: np.ndarray, places: np.ndarray
) -> dict[int, str]:
    """Read the ride_id text of a few rows again (only when a duplicate was found)."""
    by_place: dict[str, dict[int, int]] = {}
    for index in wanted:
        by_place.setdefault(reader.hash_places[places[index]], {})[int(lines[index])] = index
    found: dict[int, str] = {}
    for where, stream in open_trip_members(reader.path):
        if where not in by_place:
            continue
        for line_number, row in enumerate(csv.DictReader(stream), start=2):
            position = by_place[where].get(line_number)
            if position is not None:
                found[position] = next(
                    (value for key, value in row.items() if clean_column(key) == "ride_id"), "?"
                )
    return found


def duplicate_rides(counts_list: Sequence[TripCounts]) -> list[str]:
    """One paragraph per pair of files that share ride_ids (a file given twice, an overlap)."""
    tagged = [
        (hashes, index) for index, item in enumerate(counts_list) if len(hashes := item.ride_hashes)
    ]
    if len(tagged) < 2:
        return []
    hashes = np.concatenate([hashes for hashes, _ in tagged])
    owners = np.concatenate([np.full(len(hashes), index) for hashes, index in tagged])
    order = np.argsort(hashes, kind="stable")
    hashes, owners = hashes[order], owners[order]
    same = np.flatnonzero(hashes[1:] == hashes[:-1])
    pairs: dict[tuple[int, int], int] = {}
    for position in same.tolist():
        key = (int(owners[position]), int(owners[position + 1]))
        pairs[key] = pairs.get(key, 0) + 1
    return [
        f"{counts_list[second].file}: {shared} ride_id(s) also appear in "
        f"{counts_list[first].file}; a ride must be in one file only (is a file there twice, "
        "or do two files cover the same days?)"
        for (first, second), shared in sorted(pairs.items())
    ]
