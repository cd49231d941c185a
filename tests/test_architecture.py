"""The import rules of ARCHITECTURE.md ("What never imports what"), checked in fresh
interpreters: importing a module must not pull in what its room may not know."""

import ast
import glob
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# module -> packages that importing it must not load
RULES = {
    **{m: ("jax", "mido") for m in ("config", "notes", "encoding", "dataset", "batching",
                                         "metrics")},
    **{m: ("mido", "stylenet_jax.midi") for m in ("lstm", "model", "loss", "optim",
                                                 "train_steps")},
    "checkpoints": ("flax", "stylenet_jax.model"),
    "stylize": ("jax",),
}


@pytest.mark.parametrize("module,forbidden", sorted(RULES.items()))
def test_module_does_not_import_what_its_room_may_not_know(module, forbidden):
    code = (f"import sys, stylenet_jax.{module}; "
            f"print(','.join(m for m in {forbidden!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, PYTHONPATH=REPO))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "", f"stylenet_jax.{module} imports {done.stdout.strip()}"


def test_the_library_never_imports_the_apps():
    for path in glob.glob(os.path.join(REPO, "stylenet_jax", "*.py")):
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(("experiments", "data_prep")), (path, name)


def test_no_library_file_exceeds_the_size_of_one_room():
    for path in glob.glob(os.path.join(REPO, "stylenet_jax", "*.py")):
        with open(path, encoding="utf-8") as f:
            assert sum(1 for _ in f) <= 420, path


def test_only_encoding_slices_the_input_layout():
    """``encoding.onset_channels`` / ``held_channels`` are the one place the interleaved
    (176 = 88 x [onset, held]) layout is spelled out."""
    own = os.path.join(REPO, "stylenet_jax", "encoding.py")
    for folder in ("stylenet_jax", "experiments", "data_prep", "tests"):
        for path in glob.glob(os.path.join(REPO, folder, "*.py")):
            if path == own or path == os.path.abspath(__file__):
                continue
            text = open(path, encoding="utf-8").read()
            assert "0::2]" not in text and "1::2]" not in text, path
