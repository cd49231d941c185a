"""data_prep.synthetic: the generated corpus is deterministic and passes the paper's filters."""

import os

import numpy as np

from data_prep import synthetic
from stylenet_jax import midi


def test_synthetic_corpus_is_deterministic_and_passes_the_paper_filters(tmp_path):
    a = synthetic.write_synthetic_corpus(str(tmp_path / "a"), songs_per_style=2, seed=3)
    b = synthetic.write_synthetic_corpus(str(tmp_path / "b"), songs_per_style=2, seed=3)
    assert [os.path.relpath(p, tmp_path / "a") for p in a] == \
           [os.path.relpath(p, tmp_path / "b") for p in b]
    for pa, pb in zip(a, b):
        assert open(pa, "rb").read() == open(pb, "rb").read()
        perf = midi.load_performance(pa)
        assert len(np.unique(perf.notes.velocity)) >= 20 and perf.time_signatures == ((4, 4),)
