"""The Monte Carlo simulation on its own: exact where throughput is certain, seeded otherwise."""

from __future__ import annotations

from warehouse.forecast import HORIZON_WEEKS, Forecast, simulate


def test_constant_throughput_needs_the_same_weeks_in_every_trial() -> None:
    """Three items a week: 0 items take 0 weeks, 1-3 one week, 7 three weeks."""
    found = simulate([3, 3, 3], [0, 1, 3, 4, 7], simulations=100, seed="s")
    assert found == {
        0: Forecast(0, 0),
        1: Forecast(1, 1),
        3: Forecast(1, 1),
        4: Forecast(2, 2),
        7: Forecast(3, 3),
    }


def test_the_same_seed_gives_the_same_forecast_and_one_item_does_not_move_another() -> None:
    samples = [0, 1, 4, 2, 0, 7]
    alone = simulate(samples, [15], simulations=500, seed="42|'ART 1'")
    together = simulate(samples, [15, 60, 3], simulations=500, seed="42|'ART 1'")
    assert alone == simulate(samples, [15], simulations=500, seed="42|'ART 1'")
    assert together[15] == alone[15]


def test_percentiles_are_ordered_and_grow_with_the_work_left() -> None:
    found = simulate([0, 1, 4, 2, 0, 7], [5, 10, 20, 40], simulations=1000, seed="x")
    weeks = [(found[need].p50_weeks, found[need].p85_weeks) for need in (5, 10, 20, 40)]
    assert all(p50 is not None and p85 is not None and p50 <= p85 for p50, p85 in weeks)
    assert weeks == sorted(weeks)
    assert weeks[0] < weeks[-1]


def test_work_beyond_the_horizon_gets_no_date() -> None:
    """One item in 50 weeks on average: 100 items need far more than ten years."""
    assert simulate([0] * 49 + [1], [100], simulations=100, seed="s") == {100: Forecast(None, None)}
    assert HORIZON_WEEKS == 520
