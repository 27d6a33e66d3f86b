"""Data validation before any training: every check's outcome is reported and logged.

Checks (thresholds in :class:`~duration_training.config.PipelineConfig`):

- ``rides``: at least ``min_rides`` rides after the course's 1-60 minute filter;
- ``kept_share``: the filter keeps at least ``min_kept_share`` of a month's rides (a lower
  share means broken timestamps, not a quiet month);
- ``zones``: every non-null pickup/dropoff zone is a TLC taxi zone, 1-265;
- ``distance``: at least ``min_plausible_distance_share`` of the rides have a distance in
  ``[0, max_trip_distance]`` miles;
- ``distinct_files``: no training file is given twice, and the validation file is not one of
  the training files (by sha256).

Required columns and their types are checked while reading (``duration_core.load_trips``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from duration_core import TripData
from duration_training.config import PipelineConfig

MIN_ZONE, MAX_ZONE = 1, 265  # TLC taxi zones (taxi_zone_lookup.csv)


@dataclass(frozen=True)
class Check:
    """One check on one data source."""

    name: str
    source: str
    passed: bool
    detail: str


@dataclass
class ValidationReport:
    """Every check's outcome, in the order they ran."""

    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if not c.passed]

    def as_dict(self) -> dict[str, object]:
        """For JSON: ``{"passed": bool, "checks": [...]}``."""
        return {"passed": self.passed, "checks": [asdict(c) for c in self.checks]}

    def summary(self) -> str:
        """One line per failed check, ``source: check: detail``."""
        return "; ".join(f"{c.source}: {c.name} failed: {c.detail}" for c in self.failures)


def validate(train: list[TripData], val: TripData, config: PipelineConfig) -> ValidationReport:
    """Run every check on the training months and the validation month."""
    report = ValidationReport()
    for data in [*train, val]:
        report.checks.extend(_checks(data, config))
    train_digests: dict[str, str] = {}
    for data in train:
        twin = train_digests.get(data.sha256)
        if twin is not None:
            report.checks.append(
                Check("distinct_files", data.path.name, False,
                      f"has the same bytes as training file {twin}: it would count twice")
            )  # fmt: skip
        train_digests[data.sha256] = data.path.name
    same = train_digests.get(val.sha256)
    report.checks.append(
        Check(
            "distinct_files",
            val.path.name,
            same is None,
            "differs from every training file"
            if same is None
            else f"has the same bytes (sha256 {val.sha256[:12]}) as training file {same}",
        )
    )
    return report


def _checks(data: TripData, config: PipelineConfig) -> list[Check]:
    source = data.path.name
    report = data.report
    rides = data.rides
    checks = [
        Check(
            "rides",
            source,
            report.rows_kept >= config.min_rides,
            f"{report.rows_kept:,} rides after the {report.min_duration:g}-"
            f"{report.max_duration:g} minute filter (at least {config.min_rides:,} needed)",
        ),
        Check(
            "kept_share",
            source,
            report.kept_share >= config.min_kept_share,
            f"the filter kept {report.kept_share:.1%} of {report.rows_read:,} rides "
            f"(at least {config.min_kept_share:.0%} needed)",
        ),
    ]
    bad_zones = 0
    for column in ("PULocationID", "DOLocationID"):
        zones = rides[column].dropna()
        bad_zones += int((~zones.between(MIN_ZONE, MAX_ZONE)).sum())
    checks.append(
        Check(
            "zones",
            source,
            bad_zones == 0,
            f"{bad_zones:,} pickup/dropoff zone IDs outside {MIN_ZONE}-{MAX_ZONE}",
        )
    )
    distance = rides["trip_distance"]
    plausible = float(distance.between(0, config.max_trip_distance).mean()) if len(rides) else 0.0
    checks.append(
        Check(
            "distance",
            source,
            plausible >= config.min_plausible_distance_share,
            f"{plausible:.2%} of rides have a distance of 0-{config.max_trip_distance:g} miles "
            f"(at least {config.min_plausible_distance_share:.0%} needed)",
        )
    )
    correlation = (
        float(rides["trip_distance"].corr(rides["duration"], method="spearman"))
        if len(rides) > 1
        else float("nan")
    )
    checks.append(
        Check(
            "distance_duration",
            source,
            correlation >= config.min_distance_duration_correlation,  # NaN fails
            f"rank correlation of distance and duration {correlation:.2f} "
            f"(at least {config.min_distance_duration_correlation:g} needed: real months have "
            "0.78-0.85, durations that do not belong to their rides about 0)",
        )
    )
    return checks
