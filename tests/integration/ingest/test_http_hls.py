"""http(s) files and HLS playlists served on loopback."""

import shutil

import numpy as np
import pytest

from ingest import FileSource, LiveSource, decode_file, open_source
from ingest.filesource import iter_file_frames
from vidsight.synth.servers import StaticHttpServer, make_hls
from vidsight.synth.video import moving_boxes_script, write_video

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    script = moving_boxes_script(width=320, height=240, fps=25.0, duration_s=8.0)
    video = write_video(root / "clip.mp4", script, gop_frames=25).path
    make_hls(video, root / "vod", segment_s=2.0)
    make_hls(video, root / "live", segment_s=2.0, live=True)
    with StaticHttpServer(root) as server:
        yield root, server


def relative(frames):
    return [round(f.pts_s - frames[0].pts_s, 4) for f in frames]


def test_http_file_decodes_like_the_local_file(site):
    root, server = site
    remote = open_source(server.url("clip.mp4"), fps=2.0)
    assert isinstance(remote, FileSource)
    got = list(remote)
    expected = list(iter_file_frames(str(root / "clip.mp4"), fps=2.0))
    assert [f.pts for f in got] == [f.pts for f in expected]
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(got, expected, strict=True))


def test_vod_playlist_is_a_finite_source_with_the_same_frames(site):
    root, server = site
    source = open_source(server.url("vod/index.m3u8"), fps=3.0)
    assert isinstance(source, FileSource)
    got = list(source)
    # 3 fps instants never fall exactly between two 25 fps frames: no tie to break differently
    # under the playlist's shifted MPEG-TS timestamps
    expected = list(iter_file_frames(str(root / "clip.mp4"), fps=3.0))
    assert relative(got) == relative(expected)
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(got, expected, strict=True))
    assert source.health().state.value == "ended"


def test_playlist_without_endlist_is_read_as_live(site):
    _, server = site
    source = open_source(server.url("live/index.m3u8"), fps=2.0)
    assert isinstance(source, LiveSource)
    try:
        source.reader.start()
        frames = []
        for _ in range(50):
            frames.extend(source.reader.get_batch(16, 0.2))
            if len(frames) >= 4:
                break
        assert len(frames) >= 4
        assert frames[0].wall_time_s is not None
    finally:
        source.close()


def test_parallel_decode_on_ray_equals_sequential(site, ray_local):
    root, _ = site
    video = root / "clip.mp4"
    copy = root / "clip_copy.mp4"
    shutil.copy(video, copy)
    expected = list(iter_file_frames(str(copy), fps=3.0, decoder_threads=1))
    got = list(decode_file(copy, fps=3.0, workers=2, executor="ray", intervals_per_worker=2))
    assert [f.pts for f in got] == [f.pts for f in expected]
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(got, expected, strict=True))
