import asyncio
import time

from api.alerts.hub import AlertHub
from api.alerts.models import AlertMessage


def msg(i: int) -> AlertMessage:
    return AlertMessage(type="new", alert_id=f"a{i}", sent_s=time.time())


async def test_a_slow_subscriber_loses_the_oldest_and_is_told_how_many():
    hub = AlertHub(queue_size=3)
    slow, fast = hub.subscribe(), hub.subscribe()
    got_fast = []

    async def read_fast():
        async for m in fast:
            got_fast.append(m.alert_id)
            if len(got_fast) == 10:
                return

    reader = asyncio.create_task(read_fast())
    for i in range(10):
        hub.publish(msg(i))  # never waits
        await asyncio.sleep(0)
    await asyncio.wait_for(reader, 1)
    assert got_fast == [f"a{i}" for i in range(10)]
    first = await anext(slow)
    assert first.type == "dropped" and first.dropped == 7
    assert [(await anext(slow)).alert_id for _ in range(3)] == ["a7", "a8", "a9"]
    assert slow.dropped_total == 7


async def test_closing_a_subscription_ends_its_iteration_and_unsubscribes():
    hub = AlertHub(queue_size=4)
    sub = hub.subscribe()
    hub.publish(msg(1))

    async def read_all():
        return [m.alert_id async for m in sub]

    reader = asyncio.create_task(read_all())
    await asyncio.sleep(0.01)
    sub.close()
    assert await asyncio.wait_for(reader, 1) == ["a1"]
    assert hub.subscribers == 0
    hub.publish(msg(2))  # no subscriber left: nothing to do, no error
