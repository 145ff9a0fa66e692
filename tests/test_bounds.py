"""How many rounds a network can be pruned (prac/imp/bounds.py), against small cases computed by hand."""
from __future__ import annotations

import pytest

from prac.errors import UserError
from prac.imp.bounds import check_rounds, rounds_limit
from prac.settings.config import PruneConfig
from prac.training.pruning import PruneRule


@pytest.mark.parametrize("sizes, rate, scope, expected", [
    # 10 -> 5 -> 3 -> 1 (round(0.5 x 10) = 5, round(2.5) = 2, round(1.5) = 2), then round(0.5) = 0 removes none
    ({"a": 10}, 0.5, "global", (3, 1, "a round removes none of them (round(0.5 x 1) = 0)")),
    # 10 -> 4 -> 2 -> 1, then round(0.6 x 1) = 1 would empty the network
    ({"a": 10}, 0.6, "global", (3, 1, "one more round would leave the network without a weight")),
    # layerwise: b's single weight goes in the first round (round(0.6 x 1) = 1)
    ({"a": 10, "b": 1}, 0.6, "layerwise", (0, 11, "one more round would leave a layer without a weight")),
    # global: the same layers are one pool of 11: 11 -> 4 -> 2 -> 1
    ({"a": 10, "b": 1}, 0.6, "global", (3, 1, "one more round would leave the network without a weight")),
])
def test_rounds_limit_by_hand(sizes, rate, scope, expected):
    assert rounds_limit(sizes, PruneRule.uniform(sizes, rate, scope)) == expected


@pytest.mark.parametrize("rates, scope, expected", [
    # conv 10 -> 5 -> 3 -> 1 at 0.5; the output layer's 4 at 0 stay: kept counts them, they never limit
    ({"conv": 0.5, "output": 0.0}, "global", (3, 5, "a round removes none of them (round(0.5 x 1) = 0)")),
    # output 4 -> 2 -> 1 at 0.6 empties its type first (conv 10 -> 4 -> 2 meanwhile)
    ({"conv": 0.6, "output": 0.6}, "global", (2, 3, "one more round would leave a layer type without a weight")),
    ({"conv": 0.0, "output": 0.0}, "global", (0, 14, "a round removes none of them (every layer type's rate is 0)")),
])
def test_rounds_limit_per_layer_type(rates, scope, expected):
    sizes, types = {"a": 10, "out": 4}, {"a": "conv", "out": "output"}
    assert rounds_limit(sizes, PruneRule(types, rates, scope)) == expected


def test_rounds_up_to_the_limit_are_accepted_and_one_more_is_refused_with_the_limit():
    prune = PruneConfig(rate=0.5, rounds=3)
    check_rounds(prune, "tiny", {"a": 10}, {"a": "conv"})
    with pytest.raises(UserError) as info:
        check_rounds(prune.model_copy(update={"rounds": 4}), "tiny", {"a": 10}, {"a": "conv"})
    assert str(info.value) == ("prune.rounds=4: after 3 rounds at prune.rate=0.5 (global), tiny's 10 prunable weights "
                               "are down to 1 and a round removes none of them (round(0.5 x 1) = 0): at most 3")


def test_the_refusal_names_each_types_rate_where_they_differ():
    prune = PruneConfig(rate=0.5, output_rate=0.0, rounds=4)
    with pytest.raises(UserError) as info:
        check_rounds(prune, "tiny", {"a": 10, "out": 4}, {"a": "conv", "out": "output"})
    assert str(info.value).startswith("prune.rounds=4: after 3 rounds at prune.conv_rate=0.5, prune.output_rate=0 "
                                      "(global), tiny's 14 prunable weights are down to 5 and")
