"""The members' priority lane: served first where requests queue, never turned away.

On a small overloaded shop two identical segments differ only in the lane: the lane's
buyers pay far more often, the others less; without a lane both fare alike. The
shipped pair shows the seeds' comparison at full size.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from simulator import load_scenario, simulate
from tests.conftest import SCENARIOS, small


def _overloaded(lane: bool) -> dict[str, Any]:
    shop = small(duration_s=300)
    shop["traffic"] = {"baseline_per_s": 20}
    shop["gateway"] = {
        "workers": 2,
        "queue_limit": 10,
        "service_time_ms": {"dist": "exponential", "mean": 20},
    }
    first = shop["segments"][0] | {"name": "members", "share": 0.2, "bounce_rate": 0.0}
    others = copy.deepcopy(first) | {"name": "others", "share": 0.8}
    first["priority_lane"] = lane
    shop["segments"] = [first, others]
    return shop


def _success(shop: dict[str, Any], seed: int) -> tuple[float, float]:
    funnel = simulate(shop, seed=seed).summary["funnel"]
    return funnel["members"]["purchase_success"], funnel["others"]["purchase_success"]


@pytest.mark.parametrize("seed", [1, 2])
def test_the_lane_goes_first_and_the_others_pay_for_it(seed):
    lane_members, lane_others = _success(_overloaded(True), seed)
    plain_members, plain_others = _success(_overloaded(False), seed)
    assert abs(plain_members - plain_others) < 0.05  # identical segments, no lane
    assert plain_members < 0.6  # the shop is overloaded
    assert lane_members > plain_members + 0.2
    assert lane_others < plain_others


def test_buyers_count_the_users_who_came_to_buy():
    summary = simulate(_overloaded(False), seed=3).summary
    for counts in summary["funnel"].values():
        assert counts["paid"] <= counts["buyers"] <= counts["browse"]
        assert counts["purchase_success"] == counts["paid"] / counts["buyers"]


@pytest.fixture(scope="module")
def lane_pair():
    return {
        name: simulate(load_scenario(SCENARIOS / f"{name}.yaml")).summary["funnel"]
        for name in ("member-priority-lane-off", "member-priority-lane")
    }


def test_the_members_lane_at_full_size(lane_pair):
    """Members' order success rises past the seeds' 89%; everyone else's falls."""
    off, on = lane_pair["member-priority-lane-off"], lane_pair["member-priority-lane"]
    assert off["member"]["purchase_success"] < 0.85
    assert on["member"]["purchase_success"] > 0.89
    for segment in ("new", "returning"):
        assert on[segment]["purchase_success"] < off[segment]["purchase_success"]
