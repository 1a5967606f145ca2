import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.sampling import NearestSampler


def run(pts_s, fps):
    sampler = NearestSampler(fps)
    kept = []
    for p in pts_s:
        kept.extend(sampler.offer(p, p))
    return kept + sampler.flush()


def brute_force(pts_s, fps):
    """For each instant first + k/fps up to the last frame, the nearest frame (ties: earlier)."""
    kept = []
    k = 0
    while (t := pts_s[0] + k / fps) <= pts_s[-1]:
        best = min(pts_s, key=lambda p: (abs(p - t), p))
        if best not in kept:
            kept.append(best)
        k += 1
    return kept


def test_keeps_every_frame_without_fps():
    assert run([0.0, 0.1, 0.5], None) == [0.0, 0.1, 0.5]


def test_one_fps_from_thirty_fps_keeps_whole_seconds():
    pts = [i / 30 for i in range(95)]
    assert run(pts, 1.0) == [pts[0], pts[30], pts[60], pts[90]]


def test_ties_go_to_the_earlier_frame():
    assert run([0.0, 0.75, 1.25], 1.0) == [0.0, 0.75]


def test_rate_above_source_keeps_each_frame_once():
    pts = [0.0, 0.5, 1.0]
    assert run(pts, 10.0) == pts


def test_instants_after_the_last_frame_are_not_sampled():
    assert run([0.0, 0.4], 1.0) == [0.0]


def test_marks_frames_chosen_only_by_a_later_instant():
    sampler = NearestSampler(1.0)
    marked = []
    for p in [0.0, 0.9, 1.6]:
        marked.extend(sampler.offer_marked(p, p))
    # 0.9 is nearest to the instant 1.0, which lies after it: decided only when 1.6 arrived
    assert marked == [(0.0, False), (0.9, True)]


def test_rejects_non_increasing_pts():
    sampler = NearestSampler(1.0)
    sampler.offer(1.0, "a")
    with pytest.raises(ValueError, match="increasing"):
        sampler.offer(1.0, "b")


@given(
    st.lists(st.integers(min_value=1, max_value=90), min_size=1, max_size=120),
    st.sampled_from([0.5, 1.0, 2.0, 7.0, 30.0]),
)
def test_streaming_selection_equals_brute_force_nearest(steps, fps):
    pts = []
    t = 3.0
    for step in steps:
        t += step / 90
        pts.append(round(t, 6))
    assert run(pts, fps) == brute_force(pts, fps)
