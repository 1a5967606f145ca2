import time

from api.alerts.notifiers.webhook import backoff_s, sign, verify_signature

SECRET = "0123456789abcdef-secret"


def test_a_signature_verifies_and_any_change_breaks_it():
    body = b'{"type":"new"}'
    now = int(time.time())
    header = sign(SECRET, body, now)
    assert header.startswith(f"t={now},v1=") and len(header.split("v1=")[1]) == 64
    assert verify_signature(SECRET, body, header)
    assert not verify_signature(SECRET, body + b" ", header)
    assert not verify_signature("another-secret-xxxxxxxx", body, header)
    assert not verify_signature(SECRET, body, header.replace(f"t={now}", f"t={now + 1}"))
    assert not verify_signature(SECRET, body, "garbage")


def test_old_signatures_are_refused_as_replays():
    body = b"{}"
    old = int(time.time()) - 3600
    assert not verify_signature(SECRET, body, sign(SECRET, body, old), tolerance_s=300)
    assert verify_signature(SECRET, body, sign(SECRET, body, old), tolerance_s=7200)


def test_backoff_doubles_with_jitter_and_is_capped():
    for attempt, full in ((1, 0.5), (2, 1.0), (3, 2.0), (10, 30.0)):
        delays = [backoff_s(attempt, 0.5, 30.0) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in delays)
        assert max(delays) - min(delays) > full / 10  # jittered, not one fixed value
