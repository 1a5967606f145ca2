"""The parallel decoder yields exactly what a sequential decode yields: frames, pts, pixels."""

import threading

import numpy as np
import pytest

from ingest import CorruptMediaError, OutputSize, SourceOpenError, decode_file, open_source
from ingest._executors import ThreadExecutor
from ingest.errors import NotVideoError
from ingest.filesource import iter_file_frames


def sequential(path, fps, **kw):
    return list(iter_file_frames(str(path), fps=fps, decoder_threads=1, **kw))


def assert_identical(a, b):
    assert [f.pts for f in a] == [f.pts for f in b]
    assert [f.index for f in a] == list(range(len(a)))
    assert [f.index for f in b] == list(range(len(b)))
    for x, y in zip(a, b, strict=True):
        assert x.time_base == y.time_base
        assert np.array_equal(x.rgb, y.rgb), f"pixels differ at pts {x.pts}"


@pytest.mark.parametrize("name", ["cfr", "vfr", "start", "audio"])
@pytest.mark.parametrize("fps", [None, 1.0, 3.0])
def test_parallel_equals_sequential(media, name, fps):
    expected = sequential(media[name], fps)
    got = list(decode_file(media[name], fps=fps, workers=2, executor="threads", intervals_per_worker=2))
    assert len(expected) > 0
    assert_identical(got, expected)


def test_frame_threaded_sequential_equals_single_threaded(media):
    assert_identical(
        list(iter_file_frames(str(media["vfr"]), fps=2.0, decoder_threads=0)), sequential(media["vfr"], 2.0)
    )


def test_pts_come_from_the_container_not_a_frame_rate(media):
    frames = sequential(media["vfr"], None)
    steps = np.diff([f.pts_s for f in frames])
    assert steps.max() > 2 * steps.min()  # the file really is variable-rate
    start = sequential(media["start"], 1.0)
    assert start[0].pts_s == pytest.approx(12.5, abs=1e-3)
    assert [round(f.pts_s - 12.5, 3) for f in start] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]


def test_resize_on_decode_applies_to_both_paths(media):
    size = OutputSize(max_side_px=160)
    expected = sequential(media["cfr"], 1.0, size=size)
    assert expected[0].rgb.shape == (120, 160, 3)
    got = list(decode_file(media["cfr"], fps=1.0, workers=2, executor="threads", size=size))
    assert_identical(got, expected)


def test_truncated_file_yields_what_is_valid_then_names_the_position(media):
    seq_frames, par_frames = [], []
    with pytest.raises(CorruptMediaError) as seq_err:
        for f in iter_file_frames(str(media["truncated"]), fps=2.0):
            seq_frames.append(f)
    with pytest.raises(CorruptMediaError) as par_err:
        for f in decode_file(media["truncated"], fps=2.0, workers=2, executor="threads"):
            par_frames.append(f)
    assert_identical(par_frames, seq_frames)
    assert 0 < len(seq_frames) < 16
    assert seq_err.value.position_s == pytest.approx(par_err.value.position_s)
    assert f"{seq_err.value.position_s:.3f} s" in str(seq_err.value)


def test_missing_and_non_video_files_fail_clearly(media, tmp_path):
    with pytest.raises(SourceOpenError, match="no such file"):
        list(decode_file(tmp_path / "nope.mp4"))
    with pytest.raises(SourceOpenError, match="no such file"):
        open_source(str(tmp_path / "nope.mp4"))
    # FFmpeg "opens" text as an ANSI-art video; we refuse it by name
    with pytest.raises(NotVideoError, match=r"not a video file.*ansi"):
        list(open_source(str(media["not_video"])))
    with pytest.raises(NotVideoError, match=r"not a video file.*ansi"):
        list(decode_file(media["not_video"]))
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(SourceOpenError, match="not a readable media file"):
        list(open_source(str(garbage)))


def test_audio_only_file_is_not_a_video(tmp_path):
    import av

    from vidsight.synth.video import tone

    path = tmp_path / "speech.m4a"
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=16000)
        samples = tone(1.0)
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
        frame.sample_rate = 16000
        for packet in s.encode(frame):
            c.mux(packet)
        for packet in s.encode(None):
            c.mux(packet)
    with pytest.raises(SourceOpenError, match=r"no video stream.*audio"):
        list(open_source(str(path)))


class RecordingExecutor(ThreadExecutor):
    """Thread executor that records when each interval's worker finishes."""

    def __init__(self):
        super().__init__(workers=2, max_buffered=1)
        self.finished: list[int] = []
        self.lock = threading.Lock()

    def map_ordered(self, fn, target, intervals, *args):
        def recorded(target, interval, *a):
            yield from fn(target, interval, *a)
            with self.lock:
                self.finished.append(interval.number)

        return super().map_ordered(recorded, target, intervals, *args)


def test_first_frame_arrives_before_the_file_is_decoded(media):
    executor = RecordingExecutor()
    frames = decode_file(media["cfr"], fps=None, workers=2, executor=executor, intervals_per_worker=3)
    first = next(frames)
    assert first.index == 0
    with executor.lock:
        assert len(executor.finished) < 6  # bounded buffers: later intervals wait for the consumer
    frames.close()


def test_ray_chunks_keep_order_and_never_hold_back_an_interval_end(monkeypatch):
    from ingest import _executors

    monkeypatch.setattr(_executors, "_CHUNK_ITEMS", 3)
    frame = np.zeros((2, 2, 3), np.uint8)

    def worker(target, interval):
        yield from [(0, frame), (1, frame), "end-0", (2, frame), (3, frame), (4, frame), (5, frame)]

    chunks = list(_executors._chunked(worker, "t", None))
    assert [[x if isinstance(x, str) else x[0] for x in c] for c in chunks] == [
        [0, 1, "end-0"],
        [2, 3, 4],
        [5],
    ]
