"""Helpers of the listening-test tests: tools that may be missing, a tiny kit's songs, a
headless Chromium on a page served from localhost."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import sys
import tempfile
import threading

import pytest

from performer_factory import rich_file

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DEBIAN_AUDIO = "sudo apt-get install fluidsynth fluid-soundfont-gm"
DEBIAN_BROWSER = "sudo apt-get install chromium chromium-driver; pip install -r requirements.txt"


def require(available: bool, what: str, install: str) -> None:
    """Skips the test when ``what`` is missing, saying how to install it; in CI (which
    installs it, see .ci/run) a missing tool fails the test instead."""
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must have {what} ({install}; .ci/run installs it)")
    pytest.skip(f"{what} is not installed ({install}); CI installs it")


def require_audio() -> None:
    from experiments import listening_audio

    try:
        listening_audio.find_fluidsynth()
        listening_audio.find_soundfont()
        found = True
    except listening_audio.AudioToolError:
        found = False
    require(found, "FluidSynth and a General MIDI soundfont", DEBIAN_AUDIO)


def require_browser() -> None:
    try:
        import selenium  # noqa: F401
        found = os.path.isfile(CHROMIUM) and os.path.isfile(CHROMEDRIVER)
    except ImportError:
        found = False
    require(found, "Chromium, ChromeDriver and selenium", DEBIAN_BROWSER)


def write_songs(folder: str) -> str:
    """classical/ and jazz/ performances of 8, 16 and 24 bars (about 8-24 s) in ``folder``."""
    for style in ("classical", "jazz"):
        os.makedirs(os.path.join(folder, style), exist_ok=True)
        for i, bars in enumerate((8, 16, 24)):
            rich_file(os.path.join(folder, style, f"{style[0]}{i}.mid"), bars=bars)
    return folder


@contextlib.contextmanager
def served(folder: str):
    """Serves ``folder`` over HTTP on 127.0.0.1; yields the base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            # the browser drops a clip's download once it has the metadata it wanted
            if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
                super().handle_error(request, client_address)

    server = Server(("127.0.0.1", 0), functools.partial(Quiet, directory=folder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def chromium(downloads: str):
    """Headless Debian Chromium driven by ChromeDriver (selenium), saving downloads in
    ``downloads``; flags as this machine needs them (no network, root, no GPU)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="stylenet-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": downloads,
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
