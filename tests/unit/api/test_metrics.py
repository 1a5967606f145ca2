"""/metrics: per-stream values are read from the service at scrape time; latencies are histograms."""

from api.metrics import Metrics


def test_scrape_reports_each_stream_and_queue_and_forgets_removed_streams():
    streams = [
        {
            "stream_id": "cam-1",
            "fps": 1.5,
            "lag_s": 0.2,
            "processing_lag_s": 0.7,
            "reconnects": 2,
            "dropped": 3,
            "frames": 30,
            "tokens_in": 900,
            "tokens_kept": 300,
            "errors": 0,
            "queue_frames": 1,
        },
    ]
    metrics = Metrics()
    metrics.watch(lambda: streams, lambda: {"answers_waiting": 4})
    metrics.query_latency.labels("search").observe(0.02)
    text = metrics.render().decode()
    for line in [
        'vidsight_stream_fps{stream="cam-1"} 1.5',
        'vidsight_stream_lag_seconds{stream="cam-1"} 0.2',
        'vidsight_stream_processing_lag_seconds{stream="cam-1"} 0.7',
        'vidsight_stream_reconnects_total{stream="cam-1"} 2.0',
        'vidsight_stream_tokens_in_total{stream="cam-1"} 900.0',
        'vidsight_stream_tokens_kept_total{stream="cam-1"} 300.0',
        'vidsight_queue_depth{queue="answers_waiting"} 4.0',
        'vidsight_query_latency_seconds_count{kind="search"} 1.0',
    ]:
        assert line in text, line
    streams.clear()
    assert "cam-1" not in metrics.render().decode()


def test_two_apps_in_one_process_keep_their_own_metrics():
    a, b = Metrics(), Metrics()
    a.ws_clients.set(3)
    assert "vidsight_ws_clients 3.0" in a.render().decode()
    assert "vidsight_ws_clients 0.0" in b.render().decode()
