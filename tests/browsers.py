"""What the browser tests share: Debian's Chromium (Playwright cannot download its own here) and an app served by
waitress on 127.0.0.1 in a thread."""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """The app's base URL while it is served."""
    import waitress

    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(timeout=10)


@contextlib.contextmanager
def chromium() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def checked_page(browser, **context_args) -> Iterator:
    """A page in a fresh context (1200x900 unless told otherwise); a script error or an error on the console while
    it was open fails the test when the block ends."""
    context = browser.new_context(**{"viewport": {"width": 1200, "height": 900}, **context_args})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield page
    context.close()
    assert not errors, errors
