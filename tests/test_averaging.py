"""The moving average of weights (``training.ema_decay``), apart from the trainer."""

from __future__ import annotations

import pytest
import torch

from aranews.training.averaging import WeightAverage


def _model() -> torch.nn.Module:
    model = torch.nn.Sequential(torch.nn.Embedding(4, 2), torch.nn.Linear(2, 1))
    model[0].weight.requires_grad_(False)
    with torch.no_grad():
        model[1].weight.fill_(1.0)
        model[1].bias.fill_(0.0)
    return model


def test_the_average_follows_the_update_rule_and_skips_frozen_weights():
    model = _model()
    average = WeightAverage(model, decay=0.5)
    assert set(average.averaged) == {"1.weight", "1.bias"}
    for value in [3.0, 5.0, 7.0]:
        with torch.no_grad():
            model[1].weight.fill_(value)
        average.update(model)
    # m_t = 0.5 m_{t-1} + 0.5 w_t from m_0 = 0, divided by 1 - 0.5 ** t: the start (1.0) plays no part
    expected = (0.125 * 3.0 + 0.25 * 5.0 + 0.5 * 7.0) / (1 - 0.5**3)
    torch.testing.assert_close(average.averaged["1.weight"], torch.full((1, 2), expected))
    assert average.updates == 3


def test_applied_swaps_the_average_in_and_the_raw_weights_back():
    model = _model()
    average = WeightAverage(model, decay=0.9)
    for value in [2.0, 4.0]:
        with torch.no_grad():
            model[1].weight.fill_(value)
        average.update(model)
    with average.applied(model):
        torch.testing.assert_close(model[1].weight, average.averaged["1.weight"])
        assert not torch.equal(model[1].weight, torch.full((1, 2), 4.0))
    assert torch.equal(model[1].weight, torch.full((1, 2), 4.0))
    with pytest.raises(RuntimeError), average.applied(model):
        raise RuntimeError("evaluation failed")
    assert torch.equal(model[1].weight, torch.full((1, 2), 4.0))


def test_state_round_trips_and_a_mismatch_is_refused():
    model = _model()
    average = WeightAverage(model, decay=0.9)
    with torch.no_grad():
        model[1].weight.fill_(2.0)
    average.update(model)
    restored = WeightAverage(_model(), decay=0.9)
    restored.load_state_dict(average.state_dict())
    assert restored.updates == 1
    torch.testing.assert_close(restored.averaged["1.weight"], average.averaged["1.weight"])
    other = torch.nn.Sequential(torch.nn.Linear(2, 1))
    with pytest.raises(ValueError, match="does not match"):
        WeightAverage(other, decay=0.9).load_state_dict(average.state_dict())
