"""The project installs as a package (``pip install -r requirements.txt`` = ``-e .[test]``):
a console script, and the shipped model found from any folder."""

import importlib.metadata
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def distribution():
    try:
        return importlib.metadata.distribution("stylenet-jax")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("stylenet-jax is not installed: python3 -m pip install -r requirements.txt")


def test_the_console_script_is_declared(distribution):
    scripts = {e.name: e.value for e in distribution.entry_points
               if e.group == "console_scripts"}
    assert scripts == {"stylenet-stylize": "stylenet_jax.stylize:cli"}
    requires = distribution.requires or []
    assert any(r.startswith("jax==") for r in requires)
    assert any(r.startswith("pytest") and "extra" in r for r in requires)  # tests only


def test_stylize_runs_from_any_folder_with_the_shipped_model(distribution, tmp_path):
    script = shutil.which("stylenet-stylize")
    assert script, "the console script is not on PATH"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([script, os.path.join(REPO, "examples", "minuet_in_g.mid"), "-o",
                           "out.mid", "--style", "pop"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "out.mid").is_file() and "style pop" in done.stdout + done.stderr
    done = subprocess.run([sys.executable, "-m", "stylenet_jax.stylize", "--help"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--style" in done.stdout
