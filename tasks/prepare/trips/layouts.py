"""The two trip history layouts bike-sharing systems publish, recognised from a file's header."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from schemas.errors import TripDataError


@dataclass(frozen=True)
class TripLayout:
    """One header layout: its name and the columns a trip's start, end, member type come from."""

    name: str
    columns: tuple[str, ...]  # every column the published layout has, in its order
    start: str
    end: str
    member: str
    station: str
    ride_id: str | None  # the legacy layout has no ride id
    member_values: frozenset[str]  # member type values counted as registered (lower case)
    casual_values: frozenset[str]  # member type values counted as casual (lower case)

    @property
    def needed(self) -> tuple[str, ...]:
        """The columns the aggregation reads (the rest of the layout may be missing)."""
        names = (self.start, self.end, self.member, self.station)
        return (*names, self.ride_id) if self.ride_id else names


# Capital Bikeshare until 2020. Its first files (2010-2011) said Registered, later ones Member.
LEGACY = TripLayout(
    name="legacy",
    columns=(
        "Duration",
        "Start date",
        "End date",
        "Start station number",
        "Start station",
        "End station number",
        "End station",
        "Bike number",
        "Member type",
    ),
    start="Start date",
    end="End date",
    member="Member type",
    station="Start station number",
    ride_id=None,
    member_values=frozenset({"member", "registered"}),
    casual_values=frozenset({"casual"}),
)

# Capital Bikeshare since 2020, Citi Bike, Divvy, Bay Wheels.
CURRENT = TripLayout(
    name="current",
    columns=(
        "ride_id",
        "rideable_type",
        "started_at",
        "ended_at",
        "start_station_name",
        "start_station_id",
        "end_station_name",
        "end_station_id",
        "start_lat",
        "start_lng",
        "end_lat",
        "end_lng",
        "member_casual",
    ),
    start="started_at",
    end="ended_at",
    member="member_casual",
    station="start_station_id",
    ride_id="ride_id",
    member_values=frozenset({"member"}),
    casual_values=frozenset({"casual"}),
)

LAYOUTS: tuple[TripLayout, ...] = (LEGACY, CURRENT)


def clean_column(name: object) -> str:
    """A header cell without the byte order mark, quotes and spaces some exports add."""
    return str(name).lstrip("\ufeff").strip().strip('"').strip()


def detect_layout(columns: Iterable[object], where: str) -> TripLayout:
    """The layout whose columns the header has (extra columns are fine); else TripDataError."""
    found = [clean_column(name) for name in columns]
    present = set(found)
    for layout in LAYOUTS:
        if set(layout.needed) <= present:
            return layout
    expected = "; ".join(f"{layout.name}: {', '.join(layout.columns)}" for layout in LAYOUTS)
    shown = ", ".join(found) if found else "(no header)"
    raise TripDataError(
        f"{where}: the header is not a trip history layout bikeflow knows. Columns found: "
        f"{shown}. Expected one of ({expected}); the columns read are the start and end time, "
        "the member type and the start station (and ride_id in the current layout).",
        file=where,
    )
