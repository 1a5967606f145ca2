"""The web page in headless Chromium: a key typed in, the live connection up, a question typed and
its answer seen streaming in, cited events and search results with their thumbnails loaded."""

import os

import pytest

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip("no Chromium at /usr/bin/chromium")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


def test_page_asks_and_shows_the_streamed_answer_and_searches_with_thumbnails(server, ingested, browser):
    page = browser.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))
    page.goto(server.url + "/")
    page.fill("#api-key", server.keys["read"])
    page.click("#key-form button")
    page.wait_for_selector("#conn.on", timeout=15_000)
    page.wait_for_selector("#streams tbody tr", timeout=15_000)  # the sample video is listed
    assert "sample" in page.inner_text("#streams")

    page.fill("#question", "What moved across the screen?")
    page.click("#ask-button")
    page.wait_for_selector("#answer[data-done=true]", state="attached", timeout=60_000)
    answer = page.inner_text("#answer")
    tokens = [f for f in frames if '"type": "token"' in f]
    assert answer and len(tokens) >= 2  # it arrived in pieces, over the WebSocket
    assert page.locator("#cited li").count() >= 1
    assert "tokens" in page.inner_text("#answer-meta")

    page.fill("#query", "two boxes")
    page.click("#search-form button")
    page.wait_for_selector("#search-results li img", timeout=15_000)
    loaded = "() => [...document.querySelectorAll('#search-results img')].some(i => i.naturalWidth > 0)"
    page.wait_for_function(loaded, timeout=15_000)
    assert problems == [] and page.is_hidden("#notice")

    page.reload()  # the key survives a reload (localStorage)
    assert page.input_value("#api-key") == server.keys["read"]
    page.wait_for_selector("#conn.on", timeout=15_000)
    page.close()


def test_page_shows_a_clear_message_for_a_bad_key(server, browser):
    page = browser.new_page()
    page.goto(server.url + "/")
    page.fill("#api-key", "vsk_0123456789ab_wrong")
    page.click("#key-form button")
    page.wait_for_selector("#notice:not([hidden])", timeout=15_000)
    assert "unknown API key" in page.inner_text("#notice")
    page.close()
