"""A real HTTP server for browser tests and the screenshot script: uvicorn in a thread."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

CHROMIUM = os.environ.get("TERRITOIRE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def wait_for_attribute(
    locator: Any, name: str, accept: Callable[[str], bool], timeout: float = 15.0
) -> str:
    """Wait until the element's attribute satisfies `accept`, asking from Python.

    Not `page.wait_for_function`: when its first try fails, its polling compiles the
    predicate in the page, which the pages' CSP (no 'unsafe-eval') refuses."""
    deadline = time.monotonic() + timeout
    while True:
        value = locator.get_attribute(name)
        if value is not None and accept(value):
            return str(value)
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} is {value!r} after {timeout} s")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serve(app: Any, timeout: float = 15.0) -> Iterator[str]:
    """Serve `app` on a free local port for the duration of the block; yield its base URL."""
    port = free_port()
    # Open event streams (live updates) must not hold the shutdown for long.
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the test server did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)


def chromium_problem() -> str | None:
    """Why Chromium cannot be used here, or None when it can."""
    if not Path(CHROMIUM).is_file():
        return (
            f"Chromium not found at {CHROMIUM}; install it with "
            "`apt-get install -y chromium` or set TERRITOIRE_CHROMIUM"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing; run `.venv/bin/pip install -e '.[dev]'`"
    return None
