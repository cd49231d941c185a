"""Shared test options: --runslow, and the real corpus beside the project (../shared/data)."""

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CORPUS = pathlib.Path(os.environ.get("STYLENET_CORPUS", ROOT.parent / "shared" / "data"))


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False,
                     help="also run tests marked slow (CI does)")


def pytest_collection_modifyitems(config, items):
    for item in items:  # every test that reads the real corpus carries the marker
        if "corpus_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.corpus)
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def corpus_dir() -> pathlib.Path:
    """The real corpus; skipped where it is absent (a fresh clone), never in CI."""
    if not (CORPUS / "manifest.csv").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the corpus at {CORPUS} (../shared/data beside the repo)")
        pytest.skip(f"the real corpus is absent ({CORPUS}); these tests run where "
                    "../shared/data sits beside the project, and always in CI")
    return CORPUS
