"""Redis going away and coming back: writes stay durable, search keeps working, health says what
is wrong, and Redis catches up (each event published once) when it returns."""

import os
import signal
import time
from collections import Counter

import numpy as np
import pytest
import redis

from memory import MemoryBank, StoreUnavailableError
from tests.unit.memory.factories import make_event

pytestmark = pytest.mark.integration


def _wait(predicate, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_redis_restart_is_survived_and_waiting_events_are_published_once(redis_server, open_bank):
    bank = open_bank(url=redis_server.url, maintenance_interval_s=0.2)
    bank.register_stream("cam")
    bank.add_many([make_event(i, "cam") for i in range(5)])

    redis_server.kill()
    started = time.perf_counter()
    acks = [bank.add(make_event(i, "cam")) for i in range(5, 8)]
    assert time.perf_counter() - started < 10  # bounded retries, no hang
    assert all(a.lsn > 0 and not a.published for a in acks)  # durable, publication waits
    health = bank.health()
    assert health.state == "degraded" and health.redis.state == "unavailable"
    assert health.redis.pending_events == 3 and "unreachable" in health.redis.last_error
    assert bank.search(make_event(6, "cam").embedding, k=1)[0].event_id == "cam:6"  # search needs no Redis
    with pytest.raises(StoreUnavailableError, match="unreachable"):
        bank.register_stream("other")
    with pytest.raises(StoreUnavailableError):
        bank.follow("0", block_ms=100)

    redis_server.start()  # same folder: its append-only file brings the first five back
    assert _wait(lambda: bank.health().state == "ok"), bank.health()
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    adds = Counter(d["event_id"] for _, d in client.xrange(f"{bank.settings.redis_key_prefix}events"))
    assert adds == Counter(f"cam:{i}" for i in range(8))
    assert all(bank.redis.event_fields(f"cam:{i}") for i in range(8))
    assert bank.redis.applied_lsn(0) == bank.writers[0].lsn


def test_a_redis_that_lost_its_data_is_written_again(redis_server, open_bank):
    bank = open_bank(url=redis_server.url)
    bank.register_stream("cam")
    bank.add_many([make_event(i, "cam") for i in range(6)])
    bank.pin("cam:2")
    bank.delete("cam:4")
    redis_server.kill()
    for path in redis_server.directory.rglob("*"):
        if path.is_file():
            path.unlink()
    redis_server.start(persistent=False)
    bank.add(make_event(6, "cam"))  # the next change finds the watermark gone and re-syncs
    assert bank.flush_redis()
    assert sorted(bank.redis.stream_event_ids("cam")) == sorted(f"cam:{i}" for i in (0, 1, 2, 3, 5, 6))
    assert bank.redis.event_fields("cam:2")["pinned"] == "1" and not bank.redis.event_fields("cam:4")
    assert "cam" in bank.redis.get_streams()  # the registry came back from the local copy
    assert bank.writers[0].sync.resyncs == 1


def test_embedded_redis_persists_and_is_restarted_if_it_dies(tmp_path, settings):
    s = settings.model_copy(update={"embedded_redis_appendfsync": "always"})
    bank = MemoryBank(s, data_dir=tmp_path, redis_url=None)
    try:
        bank.register_stream("cam", options={"source": "rtsp://x"})
        bank.add_many([make_event(i, "cam") for i in range(3)])
        assert bank.health().redis.embedded
    finally:
        bank.close()
    assert (tmp_path / "memory" / "redis" / "appendonly.aof").exists()

    bank = MemoryBank(s, data_dir=tmp_path, redis_url=None)
    try:
        assert bank.streams()["cam"].options == {"source": "rtsp://x"}
        assert bank.redis.event_fields("cam:1")["stream_id"] == "cam"
        embedded = bank.redis.embedded
        os.kill(embedded.pid, signal.SIGKILL)
        assert _wait(lambda: not embedded.is_running(), 5)
        with pytest.raises(StoreUnavailableError):
            bank.redis.event_fields("cam:1")  # this failure restarts the embedded server
        ack = bank.add(make_event(3, "cam"))  # published at once or after the next probe
        assert ack.lsn > 0 and _wait(bank.flush_redis)
        assert bank.redis.event_fields("cam:1")["stream_id"] == "cam"
        assert bank.redis.event_fields("cam:3")["stream_id"] == "cam"
        assert np.isclose(bank.search(make_event(3, "cam").embedding, k=1)[0].score, 1.0, atol=1e-5)
    finally:
        bank.close()
