"""Ensemble members that play only some styles (stylenet_jax.ensemble_plays): the export,
the Stylizer's per-style mean, and `experiments.ensemble --model=STYLES=PATH`."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from performer_factory import STYLES, export_tiny_model
from stylenet_jax import checkpoints, ensemble_plays, performer
from test_ensemble import ROOT, other_model, piece

CLASSICAL, JAZZ = STYLES


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plays")
    return export_tiny_model(str(folder / "a.npz")), other_model(str(folder / "b.npz"))


def test_choices_are_checked_and_put_in_head_order():
    assert ensemble_plays.check_plays([None, ["jazz", "classical"]], STYLES) == [STYLES, STYLES]
    assert ensemble_plays.check_plays([["jazz"], ["classical"]], STYLES) == [["jazz"],
                                                                            ["classical"]]
    for plays, words in (([["pop"], None], "choose distinct styles"),
                         ([[], None], "choose distinct styles"),
                         ([["jazz", "jazz"], None], "choose distinct styles"),
                         ([["jazz"], ["jazz"]], "no model plays classical")):
        with pytest.raises(ValueError, match=words):
            ensemble_plays.check_plays(plays, STYLES)
    assert ensemble_plays.check_plays([["jazz"]], STYLES, every_style=False) == [["jazz"]]


def test_member_specs(tmp_path):
    assert ensemble_plays.split_member_spec("runs/a") == (None, "runs/a")
    assert ensemble_plays.split_member_spec("classical, pop=runs/a") == (["classical", "pop"],
                                                                        "runs/a")
    odd = tmp_path / "x=y.npz"  # a file whose name has "=" is a path, not a choice
    odd.write_bytes(b"")
    assert ensemble_plays.split_member_spec(str(odd)) == (None, str(odd))


def test_weights_give_each_style_the_mean_of_its_players():
    blend = {"classical": 0.25, "jazz": 0.75}
    everyone = ensemble_plays.member_weights([STYLES, STYLES], blend)
    assert everyone == [blend, blend]  # exactly the plain mean's weights
    split = ensemble_plays.member_weights([["classical"], STYLES, ["jazz"]], blend)
    # summed and divided by 3: classical = mean of members 1-2, jazz = mean of members 2-3
    assert split == [{"classical": 0.375}, {"classical": 0.375, "jazz": 1.125},
                     {"jazz": 1.125}]
    assert ensemble_plays.member_weights([["classical"], STYLES], {"jazz": 1.0})[0] == {}


def test_a_style_is_the_mean_of_the_members_that_play_it(members, tmp_path):
    a, b = (checkpoints.load_inference(p) for p in members)
    plain = checkpoints.export_ensemble(str(tmp_path / "plain.npz"), [a, b])
    unrestricted = checkpoints.export_ensemble(str(tmp_path / "same.npz"), [a, b], [None, None])
    assert open(plain, "rb").read() == open(unrestricted, "rb").read()  # written as before
    path = checkpoints.export_ensemble(str(tmp_path / "split.npz"), [a, b], [[CLASSICAL], None])
    with np.load(path) as z:
        described = json.loads(str(z["__meta__"]))["members"]
    assert described[0]["plays"] == [CLASSICAL] and "plays" not in described[1]

    split, one, two = (performer.Stylizer(p) for p in (path, *members))
    assert split.plays == [[CLASSICAL], STYLES]
    inputs = piece()
    np.testing.assert_allclose(split.predict(inputs, {JAZZ: 1.0}),
                               two.predict(inputs, {JAZZ: 1.0}), atol=1e-6)
    classical = (one.predict(inputs, {CLASSICAL: 1.0}) + two.predict(inputs, {CLASSICAL: 1.0})) / 2
    np.testing.assert_allclose(split.predict(inputs, {CLASSICAL: 1.0}), classical, atol=1e-6)
    half = split.predict(inputs, {CLASSICAL: 0.5, JAZZ: 0.5})
    np.testing.assert_allclose(half, 0.5 * classical + 0.5 * two.predict(inputs, {JAZZ: 1.0}),
                               atol=1e-6)
    classical_head = STYLES.index(CLASSICAL)
    assert {heads for member, heads in split._selected if member == 0} == {(classical_head,)}
    assert not np.allclose(split.predict(inputs, {JAZZ: 1.0}),
                           performer.Stylizer(plain).predict(inputs, {JAZZ: 1.0}), atol=1e-3)


def test_a_bad_recorded_choice_is_one_line(members, tmp_path):
    a, b = (checkpoints.load_inference(p) for p in members)
    path = checkpoints.export_ensemble(str(tmp_path / "e.npz"), [a, b], [[CLASSICAL], None])
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["__meta__"]))
    for plays, words in ((["pop"], "choose distinct styles"), ("jazz", "bad 'plays'")):
        meta["members"][0]["plays"] = plays
        arrays["__meta__"] = np.array(json.dumps(meta))
        bad = str(tmp_path / "bad.npz")
        np.savez(bad, **arrays)
        with pytest.raises(performer.StylizeError, match=words):
            performer.Stylizer(bad)


def _ensemble(*args):
    return subprocess.run([sys.executable, "-m", "experiments.ensemble", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_the_command_chooses_styles_per_member(members, tmp_path):
    out = tmp_path / "split.npz"
    done = _ensemble(f"--model={CLASSICAL}={members[0]}", f"--model={members[1]}",
                     f"--out={out}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"plays {CLASSICAL}" in done.stdout
    assert performer.Stylizer(str(out)).plays == [[CLASSICAL], STYLES]
    # an ensemble given as a member keeps its members' choices, narrowed by a new one
    again = tmp_path / "again.npz"
    done = _ensemble(f"--model={out}", f"--model={JAZZ}={members[1]}", f"--out={again}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert performer.Stylizer(str(again)).plays == [[CLASSICAL], STYLES, [JAZZ]]
    for args, words in (([f"--model=pop={members[0]}", f"--model={members[1]}"],
                         "choose distinct styles"),
                        ([f"--model={JAZZ}={members[0]}", f"--model={JAZZ}={members[1]}"],
                         "no model plays classical"),
                        ([f"--model={JAZZ}={out}", f"--model={members[1]}"],
                         "plays none of")):
        bad = _ensemble(*args, f"--out={tmp_path / 'bad.npz'}")
        assert bad.returncode != 0 and words in bad.stderr, bad.stderr[-2000:]
        assert "Traceback" not in bad.stderr and not (tmp_path / "bad.npz").exists()
    assert os.path.exists(out)
