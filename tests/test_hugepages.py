"""Tests of stylenet_jax.hugepages (the glibc huge-page tunable and the re-execution)."""

import os
import subprocess
import sys

from stylenet_jax import hugepages

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_environment_adds_the_tunable_once_and_respects_the_users_choice():
    assert hugepages.environment({"A": "1"}, "linux") == {"A": "1",
                                                          "GLIBC_TUNABLES": hugepages.TUNABLE}
    other = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}
    assert hugepages.environment(other, "linux")["GLIBC_TUNABLES"] == (
        "glibc.malloc.arena_max=2:" + hugepages.TUNABLE)
    assert hugepages.environment({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, "linux") is None
    assert hugepages.environment({"GLIBC_TUNABLES": hugepages.TUNABLE}, "linux") is None
    assert hugepages.environment({}, "darwin") is None


def _run(code: str, **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={**environ, "PYTHONPATH": REPO, **env}, timeout=60)


CODE = ("import os, sys; from stylenet_jax import hugepages; "
        "hugepages.reexec(log=lambda m: print('LOG', m, file=sys.stderr)); "
        "print(os.getpid(), os.environ.get('GLIBC_TUNABLES'))")


def test_reexec_sets_the_tunable_keeps_the_pid_and_does_not_loop():
    done = _run(CODE)
    assert done.returncode == 0, done.stderr
    if sys.platform == "linux":
        assert done.stdout.split()[1] == hugepages.TUNABLE
        assert done.stderr.count("LOG re-executing") == 1
    mine = _run(CODE, GLIBC_TUNABLES="glibc.malloc.hugetlb=0")
    assert mine.stdout.split()[1] == "glibc.malloc.hugetlb=0" and "LOG" not in mine.stderr
