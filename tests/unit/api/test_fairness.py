"""The model's turns go round-robin across owners: a client with many questions waits its turn."""

import asyncio

import pytest

from api.fairness import FairLock


async def run_turns(lock: FairLock, requests: list[str]) -> list[str]:
    order: list[str] = []

    async def one(owner: str, i: int) -> None:
        async with lock.turn(owner):
            order.append(f"{owner}{i}")
            await asyncio.sleep(0)

    await lock.acquire("first")  # hold the lock while everyone lines up
    tasks = [asyncio.create_task(one(o, i)) for i, o in enumerate(requests)]
    await asyncio.sleep(0)
    lock.release()
    await asyncio.gather(*tasks)
    return order


async def test_owners_alternate_instead_of_first_come_first_served():
    order = await run_turns(FairLock(), ["a", "a", "a", "a", "b", "c"])
    assert order == ["a0", "b4", "c5", "a1", "a2", "a3"]


async def test_one_owner_alone_is_served_in_arrival_order():
    assert await run_turns(FairLock(), ["a", "a", "a"]) == ["a0", "a1", "a2"]


async def test_a_cancelled_waiter_gives_up_its_place_and_the_lock_stays_usable():
    lock = FairLock()
    await lock.acquire("x")
    waiter = asyncio.create_task(lock.acquire("y"))
    other = asyncio.create_task(lock.acquire("z"))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert lock.waiters == 1
    lock.release()
    await asyncio.wait_for(other, 1)
    lock.release()
    await asyncio.wait_for(lock.acquire("w"), 1)  # free again


async def test_a_turn_handed_to_a_cancelled_waiter_passes_on():
    lock = FairLock()
    await lock.acquire("x")
    doomed = asyncio.create_task(lock.acquire("y"))
    heir = asyncio.create_task(lock.acquire("z"))
    await asyncio.sleep(0)
    lock.release()  # y's future is resolved ...
    doomed.cancel()  # ... but y is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await doomed
    await asyncio.wait_for(heir, 1)
