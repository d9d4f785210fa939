"""P(better) is judged on posterior draws that did not choose the move, and must clear the bar beyond its Monte
Carlo error (world paced_search seed 0: a half move chosen and judged on the same draws showed P 0.85 and lost
to keep-the-split under the truth)."""
import numpy as np

from weathervane.allocate.safety import ModelEvidence, choose_and_judge, gate, prob_error

RIGHT = ModelEvidence.assumed("m")


def _lift(positive_even: int, positive_odd: int, n: int = 200) -> np.ndarray:
    """n draws of lift: of the even draws `positive_even` are +1, of the odd `positive_odd`; the rest -1."""
    out = -np.ones(n)
    out[0::2][:positive_even] = 1.0
    out[1::2][:positive_odd] = 1.0
    return out


def test_a_move_that_only_its_own_draws_favour_falls_back_to_keep_the_split():
    # the draws that chose the move favour it (95 of 100) and the others do not (65 of 100): over all 200 draws
    # P(better) is 0.80, at the bar; judged on the draws that played no part in the choice it is 0.65
    lucky = _lift(95, 65)
    steady = _lift(88, 88) * 0.5  # smaller lift, the same in both halves
    move, judged = choose_and_judge({(1.0, 1.0): lucky, (0.5, 1.0): steady}, 0.8)
    assert move == (1.0, 1.0) and (lucky > 0).mean() >= 0.8
    assert judged.size == 100 and (judged > 0).mean() == 0.65
    prob, reasons = gate(RIGHT, judged, True, 0.8, None)
    assert prob == 0.65 and any("below planning.min_prob_better 80%" in r for r in reasons)


def test_the_bar_is_met_only_beyond_the_estimates_monte_carlo_error():
    at_bar = _lift(82, 82)[1::2]  # 82 of 100 judged draws better: within one Monte Carlo error of 0.8
    prob, reasons = gate(RIGHT, at_bar, True, 0.8, None)
    assert prob == 0.82 and prob - prob_error(prob, 100) < 0.8 and reasons
    clear = _lift(90, 90)[1::2]
    prob, reasons = gate(RIGHT, clear, True, 0.8, None)
    assert prob == 0.9 and reasons == []
