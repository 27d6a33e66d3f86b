"""The routing table on its own: weights, sticky assignment, shadows, changes and refusals.

No registry and no model: a :class:`DeployedModel` whose pipeline is a bare object stands in
for a loaded version. Traffic shares are checked over 10,000 ride ids against a binomial
tolerance of four standard deviations, ``sqrt(n p (1 - p))`` around ``n p``.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter

import pytest

from duration_deployment.errors import ConflictError, DeploymentError, NotFoundError
from duration_deployment.registry import DeployedModel
from duration_deployment.routing import (
    BUCKETS,
    CHALLENGER,
    CHAMPION,
    RoutingTable,
    Variant,
    bucket,
    check_weight,
)

N = 10_000
RIDE_IDS = [f"ride-{i}" for i in range(N)]


def model(version: str) -> DeployedModel:
    return DeployedModel(
        name="nyc-taxi-duration",
        version=version,
        run_id=None,
        requested_uri=f"models:/nyc-taxi-duration/{version}",
        sha256="0" * 64,
        pipeline=object(),
        profile=None,
        model_kind="x",
        sklearn_version="1",
        smoke_ms=0.0,
    )


V1, V2, V3 = model("1"), model("2"), model("3")


def champion_challenger(challenger_weight: float = 0.1) -> RoutingTable:
    return (
        RoutingTable()
        .with_variant(Variant(CHAMPION, V1, 1.0))
        .with_variant(Variant(CHALLENGER, V2, challenger_weight))
    )


def weights(table: RoutingTable) -> dict[str, float]:
    return {v.name: v.weight for v in table.variants}


def assert_binomial(count: int, n: int, p: float) -> None:
    """``count`` successes of ``n`` lie within 4 standard deviations of ``n p``."""
    sd = math.sqrt(n * p * (1 - p))
    assert abs(count - n * p) <= 4 * sd, (count, n * p, sd)


# -- bucket --------------------------------------------------------------------------------------


def test_bucket_is_a_fixed_keyless_blake2b() -> None:
    # Computed once; Python's salted hash() would give another value in every process.
    assert bucket("ride-1") == 8545
    assert bucket("ride-2") == 7274
    assert bucket("") == 9876
    digest = hashlib.blake2b(b"ride-1", digest_size=8).digest()
    assert bucket("ride-1") == int.from_bytes(digest, "big") % BUCKETS


def test_buckets_cover_the_whole_range_evenly() -> None:
    slots = [bucket(r) for r in RIDE_IDS]
    assert min(slots) >= 0
    assert max(slots) <= BUCKETS - 1
    below_half = sum(s < BUCKETS // 2 for s in slots)
    assert_binomial(below_half, N, 0.5)


# -- weights -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shares",
    [
        {CHAMPION: 0.9, CHALLENGER: 0.1},
        {CHAMPION: 0.5, CHALLENGER: 0.5},
        {CHAMPION: 0.5, CHALLENGER: 0.3, "canary": 0.2},
    ],
    ids=["90-10", "50-50", "three-variants"],
)
def test_weights_are_honoured_within_binomial_tolerance(shares: dict[str, float]) -> None:
    versions = iter((V1, V2, V3))
    table = RoutingTable(tuple(Variant(name, next(versions), w) for name, w in shares.items()))
    counts = Counter(table.choose(ride).name for ride in RIDE_IDS)
    assert set(counts) == set(shares)
    assert sum(counts.values()) == N
    for name, share in shares.items():
        assert_binomial(counts[name], N, share)


def test_each_variant_owns_a_contiguous_range_of_buckets() -> None:
    table = champion_challenger(0.1)
    for ride in RIDE_IDS[:2_000]:
        expected = CHALLENGER if bucket(ride) >= 9_000 else CHAMPION
        assert table.choose(ride).name == expected


def test_random_assignment_without_a_ride_id_is_spread() -> None:
    table = champion_challenger(0.1)
    rng = random.Random(1234)
    counts = Counter(table.choose(None, rng).name for _ in range(N))
    assert_binomial(counts[CHALLENGER], N, 0.1)
    assert counts[CHAMPION] + counts[CHALLENGER] == N
    # Without an rng the module's generator is used: still both variants.
    unseeded = Counter(table.choose(None).name for _ in range(2_000))
    assert set(unseeded) == {CHAMPION, CHALLENGER}


# -- stickiness ----------------------------------------------------------------------------------


def test_same_ride_id_goes_to_the_same_variant() -> None:
    table = champion_challenger(0.1)
    first = [table.choose(r).name for r in RIDE_IDS]
    again = [table.choose(r).name for r in RIDE_IDS]
    assert first == again
    # A new table with the same weights, built in another order, routes identically.
    rebuilt = RoutingTable((Variant(CHALLENGER, V2, 0.1), Variant(CHAMPION, V1, 0.9)))
    assert [rebuilt.choose(r).name for r in RIDE_IDS] == first
    # ride-1 is in bucket 8545 < 9000: the champion's, in any process.
    assert table.choose("ride-1").name == CHAMPION


def test_sticky_rides_stay_when_the_challenger_grows() -> None:
    """Raising the challenger's share only moves champion rides to it, never the reverse."""
    small = champion_challenger(0.1)
    large = small.with_weight(CHALLENGER, 0.5)
    for ride in RIDE_IDS[:3_000]:
        if small.choose(ride).name == CHALLENGER:
            assert large.choose(ride).name == CHALLENGER


# -- shadows -------------------------------------------------------------------------------------


def test_shadow_variants_are_never_chosen() -> None:
    table = champion_challenger(0.1).with_variant(Variant("shadow-gbm", V3, 0.4, shadow=True))
    assert weights(table) == pytest.approx({CHAMPION: 0.9, CHALLENGER: 0.1, "shadow-gbm": 0.0})
    assert [v.name for v in table.live] == [CHAMPION, CHALLENGER]
    assert [v.name for v in table.shadows] == ["shadow-gbm"]
    chosen = {table.choose(r).name for r in RIDE_IDS}
    chosen |= {table.choose(None, random.Random(7)).name for _ in range(2_000)}
    assert chosen == {CHAMPION, CHALLENGER}


def test_a_live_variant_turned_shadow_leaves_the_split() -> None:
    table = champion_challenger(0.1).with_variant(Variant("canary", V3, 0.2))  # .72/.08/.2
    shadowed = table.with_variant(Variant(CHALLENGER, V2, 0.5, shadow=True))
    assert weights(shadowed) == pytest.approx(
        {CHAMPION: 0.72 / 0.92, "canary": 0.2 / 0.92, CHALLENGER: 0.0}, abs=1e-12
    )
    assert [v.name for v in shadowed.shadows] == [CHALLENGER]
    assert shadowed.revision == table.revision + 1
    # The last live variant cannot become a shadow: nothing would answer.
    alone = RoutingTable().with_variant(Variant(CHAMPION, V1, 1.0))
    with pytest.raises(ConflictError, match="'champion' is the last live variant"):
        alone.with_variant(Variant(CHAMPION, V2, 0.0, shadow=True))
    # A shadow replaced by a shadow, or turned live, keeps the live weights right.
    again = shadowed.with_variant(Variant(CHALLENGER, V3, 0.0, shadow=True))
    assert weights(again) == weights(shadowed)
    live = shadowed.with_variant(Variant(CHALLENGER, V2, 0.1))
    assert sum(v.weight for v in live.live) == pytest.approx(1.0)
    assert live.get(CHALLENGER).weight == 0.1


def test_a_table_of_shadows_only_answers_nothing() -> None:
    table = RoutingTable((Variant("shadow-gbm", V2, 0.0, shadow=True),))
    with pytest.raises(LookupError, match="no model is deployed"):
        table.choose("ride-1")
    with pytest.raises(LookupError, match="no model is deployed"):
        RoutingTable().choose(None)


# -- changes -------------------------------------------------------------------------------------


def test_first_live_variant_takes_all_the_traffic() -> None:
    table = RoutingTable().with_variant(Variant(CHAMPION, V1, 0.3))
    assert weights(table) == {CHAMPION: 1.0}
    assert table.revision == 1


def test_with_variant_rescales_the_others() -> None:
    table = champion_challenger(0.1)
    assert weights(table) == pytest.approx({CHAMPION: 0.9, CHALLENGER: 0.1}, abs=1e-12)
    assert table.revision == 2
    three = table.with_variant(Variant("canary", V3, 0.2))
    assert weights(three) == pytest.approx(
        {CHAMPION: 0.72, CHALLENGER: 0.08, "canary": 0.2}, abs=1e-12
    )
    assert [v.name for v in three.variants] == [CHAMPION, "canary", CHALLENGER]
    # Replacing a variant keeps the name once, with the new model and weight.
    replaced = table.with_variant(Variant(CHALLENGER, V3, 0.25))
    assert weights(replaced) == pytest.approx({CHAMPION: 0.75, CHALLENGER: 0.25}, abs=1e-12)
    assert replaced.get(CHALLENGER).model is V3


def test_with_weight_without_and_promoted_figures() -> None:
    table = champion_challenger(0.1)
    half = table.with_weight(CHALLENGER, 0.5)
    assert weights(half) == pytest.approx({CHAMPION: 0.5, CHALLENGER: 0.5}, abs=1e-12)
    assert half.revision == table.revision + 1

    removed = half.without(CHALLENGER)
    assert weights(removed) == pytest.approx({CHAMPION: 1.0}, abs=1e-12)
    assert removed.revision == half.revision + 1

    three = table.with_variant(Variant("canary", V3, 0.2))  # 0.72 / 0.08 / 0.2
    assert weights(three.without("canary")) == pytest.approx(
        {CHAMPION: 0.9, CHALLENGER: 0.1}, abs=1e-12
    )
    # Without the champion, the others share its 0.72 in proportion: 0.08:0.2 = 2:5.
    assert weights(three.without(CHAMPION)) == pytest.approx(
        {CHALLENGER: 2 / 7, "canary": 5 / 7}, abs=1e-12
    )

    with_shadow = table.with_variant(Variant("shadow-gbm", V3, 0.0, shadow=True))
    promoted = with_shadow.promoted(CHALLENGER)
    assert weights(promoted) == {CHAMPION: 1.0, "shadow-gbm": 0.0}
    assert promoted.get(CHAMPION).model is V2
    assert promoted.get(CHAMPION).shadow is False
    assert promoted.get(CHALLENGER) is None
    assert [v.name for v in promoted.shadows] == ["shadow-gbm"]

    # A shadow leaves without touching the live weights.
    assert weights(with_shadow.without("shadow-gbm")) == weights(table)


def test_summary_and_describe() -> None:
    table = champion_challenger(0.1).with_variant(Variant("shadow-gbm", V3, 0.0, shadow=True))
    assert table.summary() == {
        CHAMPION: {"model_version": "1", "weight": 0.9, "shadow": False},
        CHALLENGER: {"model_version": "2", "weight": 0.1, "shadow": False},
        "shadow-gbm": {"model_version": "3", "weight": 0.0, "shadow": True},
    }
    described = table.describe()
    assert described["revision"] == 3
    assert [(v["variant"], v["model_version"], v["model_uri"]) for v in described["variants"]] == [
        (CHAMPION, "1", "models:/nyc-taxi-duration/1"),
        (CHALLENGER, "2", "models:/nyc-taxi-duration/2"),
        ("shadow-gbm", "3", "models:/nyc-taxi-duration/3"),
    ]


def test_tables_are_immutable() -> None:
    table = champion_challenger(0.1)
    table.with_weight(CHALLENGER, 0.5)
    table.without(CHALLENGER)
    assert weights(table) == pytest.approx({CHAMPION: 0.9, CHALLENGER: 0.1}, abs=1e-12)
    assert table.revision == 2


# -- refusals ------------------------------------------------------------------------------------


def test_removing_the_last_live_variant_is_a_conflict() -> None:
    table = RoutingTable().with_variant(Variant(CHAMPION, V1, 1.0))
    with pytest.raises(ConflictError, match="'champion' is the last live variant") as caught:
        table.without(CHAMPION)
    assert caught.value.status == 409
    # A shadow does not count as somewhere for the traffic to go.
    shadowed = table.with_variant(Variant("shadow-gbm", V2, 0.0, shadow=True))
    with pytest.raises(ConflictError, match="last live variant"):
        shadowed.without(CHAMPION)


def test_weight_one_with_other_live_variants_is_a_conflict() -> None:
    table = champion_challenger(0.1)
    with pytest.raises(
        ConflictError, match="weight 1 for 'canary' would leave champion, challenger no traffic"
    ) as caught:
        table.with_variant(Variant("canary", V3, 1.0))
    assert caught.value.status == 409
    with pytest.raises(ConflictError, match="would leave champion no traffic"):
        table.with_weight(CHALLENGER, 1.0)


def test_weight_of_the_only_live_variant_or_a_shadow_is_a_conflict() -> None:
    alone = RoutingTable().with_variant(Variant(CHAMPION, V1, 1.0))
    with pytest.raises(ConflictError, match="only live variant"):
        alone.with_weight(CHAMPION, 0.5)
    shadowed = alone.with_variant(Variant("shadow-gbm", V2, 0.0, shadow=True))
    with pytest.raises(ConflictError, match="is a shadow variant"):
        shadowed.with_weight("shadow-gbm", 0.2)


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.with_weight("nope", 0.5),
        lambda t: t.without("nope"),
        lambda t: t.promoted("nope"),
    ],
    ids=["with_weight", "without", "promoted"],
)
def test_unknown_variant_is_not_found(change: object) -> None:
    table = champion_challenger(0.1)
    with pytest.raises(NotFoundError, match=r"no variant named 'nope' .*champion, challenger") as c:
        change(table)  # type: ignore[operator]
    assert c.value.status == 404


@pytest.mark.parametrize("weight", [0, 0.0, -0.1, 1.5, math.nan, math.inf])
def test_check_weight_refuses_shares_outside_0_1(weight: float) -> None:
    with pytest.raises(DeploymentError, match=r"must be a share of traffic from 0.0001") as c:
        check_weight(weight)
    assert c.value.status == 422


def test_check_weight_accepts_shares_in_0_1() -> None:
    assert check_weight(1.0) == 1.0
    assert check_weight(0.25) == 0.25
    assert check_weight(1e-4) == 1e-4


@pytest.mark.parametrize(
    "shares", [(0.5, 0.4), (0.9, 0.2), (0.0, 0.0)], ids=["under", "over", "zero"]
)
def test_table_refuses_weights_not_summing_to_one(shares: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="live weights sum to"):
        RoutingTable((Variant(CHAMPION, V1, shares[0]), Variant(CHALLENGER, V2, shares[1])))


def test_table_accepts_weights_summing_to_one_within_rounding() -> None:
    table = RoutingTable(
        (Variant(CHAMPION, V1, 0.7), Variant(CHALLENGER, V2, 0.2), Variant("c", V3, 0.1))
    )
    assert sum(v.weight for v in table.live) == pytest.approx(1.0)
    # Shadows are not counted.
    RoutingTable((Variant(CHAMPION, V1, 1.0), Variant("s", V2, 0.0, shadow=True)))
