"""Child process of the crash tests: adds events (and deletes some), printing every acknowledged
id, until the test kills it with SIGKILL. Run as `python -m tests.integration.memory._crash_child`."""

from __future__ import annotations

import sys

from memory import MemoryBank, MemorySettings
from tests.unit.memory.factories import make_event


def main() -> None:
    data_dir, url, prefix, mode, start = sys.argv[1:6]
    settings = MemorySettings(
        redis_key_prefix=prefix,
        maintenance_interval_s=0,
        snapshot_every_events=40,
        exact_max_events=30,
        min_free_disk_bytes=0,
    )
    bank = MemoryBank(settings, data_dir=data_dir, redis_url=url)
    bank.register_stream("cam")
    print("ready", flush=True)
    i = int(start)
    while True:
        size = 1 + i % 4  # batches of 1 to 4 events
        acks = bank.add_many([make_event(j, "cam", thumbnails=1) for j in range(i, i + size)])
        print("acked", *(a.event_id for a in acks), flush=True)
        if mode == "delete" and i % 3 == 0 and i >= 8:
            victim = f"cam:{i - 8}"
            print("deleting", victim, flush=True)
            bank.delete(victim)
            print("deleted", victim, flush=True)
        i += size


if __name__ == "__main__":
    main()
