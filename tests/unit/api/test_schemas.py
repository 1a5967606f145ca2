"""Request bodies refuse what the service could not use, with messages that say why."""

import pytest
from pydantic import TypeAdapter, ValidationError

from api.schemas import (
    AskRequest,
    ChatRequest,
    LiveAsk,
    LiveCancel,
    LiveClientMessage,
    LiveSubscribe,
    Scope,
    SearchRequest,
    StreamCreate,
    VideoCreate,
)


def test_time_windows_must_be_ordered_and_finite():
    assert Scope(since=1.0, until=2.0).until == 2.0
    with pytest.raises(ValidationError, match="must be before until"):
        Scope(since=5.0, until=5.0)
    with pytest.raises(ValidationError, match="finite"):
        Scope(since=float("inf"))


def test_unknown_fields_are_refused_in_our_own_bodies():
    with pytest.raises(ValidationError, match="extra"):
        SearchRequest(query="x", limit=3)


def test_stream_ids_are_plain_tokens():
    assert StreamCreate(url="rtsp://h/s", stream_id="cam-1.front:a").stream_id == "cam-1.front:a"
    for bad in ["", "../x", "a/b", "-lead", "a b", "x" * 129]:
        with pytest.raises(ValidationError):
            StreamCreate(url="rtsp://h/s", stream_id=bad)


def test_a_video_names_exactly_one_source():
    assert VideoCreate(path="a.mp4").path == "a.mp4"
    for kwargs in ({}, {"path": "a.mp4", "url": "https://h/a.mp4"}):
        with pytest.raises(ValidationError, match="exactly one of path or url"):
            VideoCreate(**kwargs)


def test_ask_bounds():
    assert AskRequest(question="q", stream=True).stream
    with pytest.raises(ValidationError):
        AskRequest(question="")
    with pytest.raises(ValidationError):
        AskRequest(question="q", max_new_tokens=0)


def test_chat_accepts_openai_fields_and_takes_the_scope_from_video():
    body = ChatRequest.model_validate(
        {
            "model": "gpt-x",
            "temperature": 0.2,
            "top_p": 1,
            "n": 1,
            "user": "u",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "what"}, {"type": "image_url"}]},
            ],
            "video": {"streams": ["cam"], "since": 0, "until": 10, "k": 4},
        }
    )
    assert body.messages[1].text() == "what"
    assert body.video is not None and body.video.streams == ["cam"] and body.video.k == 4


def test_chat_needs_a_user_message_with_text():
    with pytest.raises(ValidationError, match="at least one user message"):
        ChatRequest.model_validate({"messages": [{"role": "system", "content": "hi"}]})
    with pytest.raises(ValidationError):
        ChatRequest.model_validate(
            {"messages": [{"role": "user", "content": "q"}], "video": {"since": 3, "until": 1}}
        )


def test_live_messages_are_told_apart_by_type():
    adapter = TypeAdapter(LiveClientMessage)
    assert isinstance(adapter.validate_python({"type": "ask", "id": "1", "question": "q"}), LiveAsk)
    assert isinstance(adapter.validate_python({"type": "cancel", "id": "1"}), LiveCancel)
    assert isinstance(adapter.validate_python({"type": "subscribe", "topics": ["alerts"]}), LiveSubscribe)
    for bad in (
        {"type": "shout"},
        {"type": "ask", "id": "1"},
        {"question": "q"},
        {"type": "subscribe", "topics": ["x"]},
    ):
        with pytest.raises(ValidationError):
            adapter.validate_python(bad)
