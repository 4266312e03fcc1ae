"""The Ledger: per-client, per-direction, per-round bookkeeping."""

from __future__ import annotations

import io

import pytest
import torch

from commpress.errors import ConfigError, InputError
from commpress.network import Ledger


def test_record_with_client_subsets_and_totals():
    led = Ledger(4)
    led.record("up", 0, torch.tensor([10, 20]), torch.tensor([3, 1]))
    led.record("up", 0, torch.tensor([5, 5, 5, 5]))
    led.record("down", -1, torch.tensor([7, 7, 7, 7]))
    assert led.total("up").tolist() == [5, 25, 5, 15]
    assert led.messages("up").tolist() == [1, 2, 1, 2]
    assert led.total("down").tolist() == [7, 7, 7, 7]
    assert led.rounds("down") == [-1]
    assert led.mean_total("up") == pytest.approx(50 / 4)
    assert led.round_bits("up", 5).tolist() == [0, 0, 0, 0]


def test_state_dict_round_trip_through_torch_save():
    led = Ledger(3)
    led.record("up", 0, torch.tensor([1, 2, 3]))
    led.record("down", 1, torch.tensor([4, 4, 4]))
    buf = io.BytesIO()
    torch.save(led.state_dict(), buf)
    buf.seek(0)
    other = Ledger(3)
    other.load_state_dict(torch.load(buf))
    for k in ("up", "down"):
        assert torch.equal(other.total(k), led.total(k))
        assert torch.equal(other.by_round(k)[1], led.by_round(k)[1])
    with pytest.raises(ConfigError):
        Ledger(2).load_state_dict(led.state_dict())


def test_totals_only_mode_and_errors():
    led = Ledger(2, keep_rounds=False)
    led.record("up", 0, torch.tensor([1, 2]))
    assert led.total("up").tolist() == [1, 2]
    with pytest.raises(ConfigError, match="keep_rounds"):
        led.by_round("up")
    with pytest.raises(ConfigError, match="'up' or 'down'"):
        led.record("sideways", 0, torch.tensor([1, 2]))
    with pytest.raises(InputError):
        led.record("up", 0, torch.tensor([1, 2, 3]))
    with pytest.raises(InputError):
        led.record("up", 0, torch.tensor([1, 2]), torch.tensor([0]))
    led.reset()
    assert led.grand_total("up") == 0
