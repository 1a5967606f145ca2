import numpy as np

from memory.retention import RetentionPolicy, choose_victims


def _cols(n: int, pinned: list[int] = ()):
    t0 = np.arange(n, dtype=float) * 10
    added = 1000.0 + np.arange(n, dtype=float)
    pin = np.zeros(n, bool)
    pin[list(pinned)] = True
    return t0, added, pin, np.full(n, 100, np.int64)


def test_budget_deletes_oldest_unpinned_first_and_pinned_last():
    t0, added, pinned, nbytes = _cols(10, pinned=[0, 2])
    victims = choose_victims(t0, added, pinned, nbytes, RetentionPolicy(budget_bytes=500), now_wall_s=2000)
    assert victims.tolist() == [1, 3, 4, 5, 6]  # the two oldest are pinned and survive
    victims = choose_victims(t0, added, pinned, nbytes, RetentionPolicy(budget_bytes=100), now_wall_s=2000)
    assert victims.tolist() == [1, 3, 4, 5, 6, 7, 8, 9, 0]  # pinned go only when nothing else is left


def test_age_spares_pinned_events_unless_they_have_their_own_limit():
    t0, added, pinned, nbytes = _cols(6, pinned=[1])
    old = RetentionPolicy(max_age_s=997.5)  # events added before 1002.5 are old at now=2000
    assert choose_victims(t0, added, pinned, nbytes, old, 2000).tolist() == [0, 2]
    both = RetentionPolicy(max_age_s=997.5, pinned_max_age_s=997.5)
    assert sorted(choose_victims(t0, added, pinned, nbytes, both, 2000).tolist()) == [0, 1, 2]


def test_nothing_to_do_within_limits():
    t0, added, pinned, nbytes = _cols(5)
    policy = RetentionPolicy(max_age_s=1e6, budget_bytes=10_000)
    assert choose_victims(t0, added, pinned, nbytes, policy, 2000).size == 0
