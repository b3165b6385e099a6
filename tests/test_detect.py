"""The scan's detectors on synthetic series with known spikes, level shifts and seasonality."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aiobs.analysis.detect import (
    binomial_tail_z,
    cusum_intervals,
    forward_fill,
    rate_scores,
    robust_scores,
)

PERIOD = 24


def _lognormal(seed: int, n: int, level: float = 1000.0, sd: float = 0.08) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return level * np.exp(rng.normal(0, sd, n))


def test_binomial_tail_matches_the_exact_probability() -> None:
    # P(X >= 4), X ~ Bin(10, 0.1) = 0.01280 -> z = 2.232
    assert binomial_tail_z(4, 10, 0.1) == pytest.approx(2.232, abs=0.005)
    assert binomial_tail_z(0, 10, 0.1) == 0.0
    assert binomial_tail_z(11, 10, 0.1) == 8.0


def test_forward_fill_keeps_leading_gaps() -> None:
    out = forward_fill(np.array([np.nan, 1.0, np.nan, 3.0, np.nan]))
    assert np.isnan(out[0])
    assert out[1:].tolist() == [1.0, 1.0, 3.0, 3.0]


@pytest.mark.parametrize("seed", range(5))
def test_clean_noise_has_no_anomaly(seed: int) -> None:
    x = np.log(_lognormal(seed, 7 * PERIOD))
    z, _ = robust_scores(x, window=24, period=PERIOD)
    assert cusum_intervals(z) == []


@pytest.mark.parametrize("seed", range(5))
def test_spike_is_one_bucket(seed: int) -> None:
    values = _lognormal(seed, 5 * PERIOD)
    values[70] *= 2.2
    z, exp = robust_scores(np.log(values), window=24, period=PERIOD)
    found = cusum_intervals(z)
    assert [(iv.onset, iv.end, iv.kind) for iv in found] == [(70, 70, "spike")]
    assert math.exp(exp.value[70]) == pytest.approx(1000, rel=0.1)


@pytest.mark.parametrize("seed", range(5))
def test_level_shift_onset_is_the_inflection_and_it_stays_anomalous(seed: int) -> None:
    values = _lognormal(seed, 6 * PERIOD)
    values[60:] *= 1.35
    z, exp = robust_scores(np.log(values), window=24, period=PERIOD)
    found = cusum_intervals(z)
    assert len(found) == 1
    shift = found[0]
    assert shift.kind == "shift"
    assert abs(shift.onset - 60) <= 1
    # The expected level is carried from before the shift, not relearned from it.
    assert shift.ongoing and shift.end >= len(values) - 2
    assert math.exp(exp.value[-1]) == pytest.approx(1000, rel=0.1)


@pytest.mark.parametrize("seed", range(3))
def test_seasonal_pattern_is_not_an_anomaly_but_a_shift_on_it_is(seed: int) -> None:
    t = np.arange(7 * PERIOD)
    daily = 1 + 0.6 * np.sin(2 * np.pi * t / PERIOD)
    values = _lognormal(seed, len(t), sd=0.05) * daily
    z, _ = robust_scores(np.log(values), window=24, period=PERIOD)
    # Only the seasonal baseline can follow a ±60% daily swing once it has 3 days of history.
    assert [iv for iv in cusum_intervals(z) if iv.onset >= 3 * PERIOD] == []
    shifted = values.copy()
    shifted[5 * PERIOD + 10 : 5 * PERIOD + 16] *= 1.6
    z, _ = robust_scores(np.log(shifted), window=24, period=PERIOD)
    late = [iv for iv in cusum_intervals(z) if iv.onset >= 3 * PERIOD]
    assert len(late) == 1
    assert abs(late[0].onset - (5 * PERIOD + 10)) <= 1
    assert not late[0].ongoing and abs(late[0].end - (5 * PERIOD + 15)) <= 1


@pytest.mark.parametrize("seed", range(5))
def test_error_counts_shift_found_on_counts(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = rng.integers(20, 60, 6 * PERIOD).astype(float)
    p = np.full(len(n), 0.02)
    p[80:100] = 0.12
    x = rng.binomial(n.astype(int), p).astype(float)
    z, exp = rate_scores(x, n, window=24, period=PERIOD)
    found = cusum_intervals(z)
    assert len(found) == 1
    assert abs(found[0].onset - 80) <= 1 and abs(found[0].end - 99) <= 1
    assert exp.value[90] == pytest.approx(0.02, abs=0.015)


@pytest.mark.parametrize("seed", range(5))
def test_clean_error_counts_raise_nothing(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n = rng.integers(5, 40, 7 * PERIOD).astype(float)
    x = rng.binomial(n.astype(int), 0.03).astype(float)
    z, _ = rate_scores(x, n, window=24, period=PERIOD)
    assert cusum_intervals(z) == []
