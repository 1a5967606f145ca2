"""/v1/live with real WebSocket clients: streamed tokens then answer_done with cited events, cancel,
errors for bad messages, many clients at once, and a client that stops reading is cut off without
holding up the others."""

import asyncio
import json
import socket
import time

import pytest
import websockets

pytestmark = pytest.mark.integration


async def connect(server, scope="read", **kwargs):
    return await websockets.connect(server.ws_url, additional_headers=server.auth(scope), **kwargs)


async def answer(ws, ask_id, timeout_s=60.0):
    """(token messages, the answer_done message) of one question, ignoring pushes."""
    tokens, deadline = [], time.monotonic() + timeout_s
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
        if message.get("id") != ask_id:
            continue
        if message["type"] == "token":
            tokens.append(message)
        elif message["type"] in ("answer_done", "error"):
            return tokens, message


async def test_ask_streams_tokens_then_answer_done_with_cited_events(server, ingested):
    async with await connect(server) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "ask",
                    "id": "q1",
                    "question": "What moved?",
                    "max_new_tokens": 8,
                    "scope": {"streams": ["sample"], "k": 2},
                }
            )
        )
        tokens, done = await answer(ws, "q1")
    assert done["type"] == "answer_done" and done["finish_reason"] == "length"
    assert [t["tokens"] for t in tokens] == list(range(1, 9))
    assert done["answer"] == "".join(t["text"] for t in tokens)
    assert 1 <= len(done["cited"]) <= 2 and all(c["stream_id"] == "sample" for c in done["cited"])
    assert done["cited"][0]["thumbnail_url"].startswith("/v1/events/")
    assert done["ttft_ms"] > 0


async def test_cancel_stops_the_answer_early(server, ingested):
    async with await connect(server) as ws:
        await ws.send(
            json.dumps({"type": "ask", "id": "long", "question": "Tell me all", "max_new_tokens": 32})
        )
        first = json.loads(await ws.recv())
        while first.get("id") != "long":
            first = json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "cancel", "id": "long"}))
        tokens, done = await answer(ws, "long")
    assert done["finish_reason"] == "cancelled"
    assert len(tokens) + 1 < 32


async def test_bad_messages_get_error_replies_and_the_connection_stays_usable(server):
    async with await connect(server) as ws:
        await ws.send("not json")
        assert json.loads(await ws.recv())["code"] == "bad_request"
        await ws.send(json.dumps({"type": "ask", "id": "x"}))
        message = json.loads(await ws.recv())
        assert message["type"] == "error" and "question" in message["message"]
        await ws.send(json.dumps({"type": "cancel", "id": "never-asked"}))
        assert json.loads(await ws.recv())["code"] == "not_found"
        await ws.send(
            json.dumps({"type": "ask", "id": "ok", "question": "still there?", "max_new_tokens": 2})
        )
        _, done = await answer(ws, "ok")
        assert done["type"] == "answer_done"


async def test_many_clients_each_get_their_own_answer(server, ingested):
    async def one(i):
        async with await connect(server) as ws:
            await ws.send(
                json.dumps({"type": "ask", "id": f"c{i}", "question": f"question {i}", "max_new_tokens": 4})
            )
            return await answer(ws, f"c{i}")

    results = await asyncio.gather(*(one(i) for i in range(12)))
    assert all(done["type"] == "answer_done" and len(tokens) == 4 for tokens, done in results)


async def test_a_client_that_stops_reading_is_closed_and_others_are_not_held_up(server, ingested):
    # A socket with a tiny receive buffer that the client stops reading, like a stuck browser tab: the
    # server's replies back up in its queue for that client.
    raw = socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    slow = await connect(server, sock=raw, max_queue=1)
    slow.transport.pause_reading()
    for i in range(3000):  # each one gets a reply: tokens, or a rate-limit / too-many-open error
        await slow.send(json.dumps({"type": "ask", "id": f"s{i}", "question": "x", "max_new_tokens": 32}))
    async with await connect(server) as fast:
        started = time.monotonic()
        await fast.send(json.dumps({"type": "ask", "id": "f", "question": "quick", "max_new_tokens": 4}))
        tokens, done = await answer(fast, "f", timeout_s=30)
        fast_s = time.monotonic() - started
    assert done["type"] == "answer_done" and len(tokens) == 4
    assert fast_s < 10
    with server.client("read") as c:
        deadline = time.monotonic() + 30
        while "vidsight_ws_slow_disconnects_total 0.0" in (metrics := c.get("/metrics").text):
            assert time.monotonic() < deadline, "the slow client was never cut off"
            await asyncio.sleep(0.2)
    assert "vidsight_ws_clients 0.0" in metrics  # the server let go of it (and of the fast one)
    slow.transport.abort()


async def test_a_follow_up_on_one_connection_prefills_only_the_question(server, ingested):
    """One connection is one conversation: the second question finds the same events, which the
    session already holds, so it prefills only its own text; another connection starts afresh."""

    async def ask(ws, ask_id, question):
        message = {"type": "ask", "id": ask_id, "question": question, "max_new_tokens": 4}
        await ws.send(json.dumps({**message, "scope": {"streams": ["sample"], "k": 2}}))
        return (await answer(ws, ask_id))[1]

    async with await connect(server) as ws:
        first = await ask(ws, "q1", "What moved?")
        follow = await ask(ws, "q2", "What moved?")
    async with await connect(server) as other:
        fresh = await ask(other, "q3", "What moved?")
    assert first["type"] == follow["type"] == fresh["type"] == "answer_done"
    assert [c["event_id"] for c in follow["cited"]] == [c["event_id"] for c in first["cited"]]
    assert follow["prefill_tokens"] < first["prefill_tokens"] // 2
    assert follow["kv_tokens"] > first["kv_tokens"]
    assert fresh["prefill_tokens"] == first["prefill_tokens"]
