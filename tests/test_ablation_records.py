"""The sweep's record file: what decides a run, and reusing a run only when nothing did."""

import json

import pytest

from experiments import ablation_records


def _key(lines, **overrides):
    args = dict(train_flags=["--noprogress"], seed=0, epochs=4, data="d", test_ids=["b", "a"],
                classifier=True)
    args.update(overrides)
    return ablation_records.run_key(lines, **args)


def test_nested_flagfiles_are_inlined_so_a_change_to_the_base_changes_the_key(tmp_path):
    base = tmp_path / "base.flags"
    base.write_text("# the base\n--num_layers=3\n\n--dropout_keep=0.8\n")
    variant = tmp_path / "variant.flags"
    variant.write_text(f"# one change\n--flagfile={base.name}\n--loss=onset\n")
    lines = ablation_records.resolved_flags(variant.name, str(tmp_path))
    assert lines == ["--num_layers=3", "--dropout_keep=0.8", "--loss=onset"]
    before = _key(lines)
    base.write_text("--num_layers=1\n--dropout_keep=0.8\n")
    after = _key(ablation_records.resolved_flags(str(variant), str(tmp_path)))
    assert before["flags"] != after["flags"]


def test_a_flagfile_that_includes_itself_is_refused(tmp_path):
    loop = tmp_path / "loop.flags"
    loop.write_text(f"--flagfile={loop}\n")
    with pytest.raises(ValueError, match="includes itself"):
        ablation_records.resolved_flags(str(loop), str(tmp_path))


def test_every_setting_in_the_key_decides_a_match():
    lines = ["--loss=onset"]
    key = _key(lines)
    assert _key(lines) == key and _key(lines, test_ids=["a", "b"]) == key  # order-free test set
    for changed in (_key(["--loss=active"]), _key(lines, train_flags=[]), _key(lines, seed=1),
                    _key(lines, epochs=5), _key(lines, data="e"), _key(lines, test_ids=["a"]),
                    _key(lines, classifier=False)):
        assert changed != key


def test_the_data_fingerprint_follows_the_songs_not_the_corpus_location():
    songs = [{"id": "jazz/a", "split": "train", "sha256": "1"},
             {"id": "jazz/b", "split": "test", "sha256": "2"}]
    here = {"encoding_version": 2, "source": "/here", "songs": songs}
    there = {"encoding_version": 2, "source": "/there", "songs": songs[::-1]}
    assert ablation_records.data_fingerprint(here) == ablation_records.data_fingerprint(there)
    moved = [dict(songs[0]), dict(songs[1], split="train")]
    assert (ablation_records.data_fingerprint({"encoding_version": 2, "songs": moved})
            != ablation_records.data_fingerprint(here))


def test_records_round_trip_and_only_a_matching_key_is_reused(tmp_path):
    path = ablation_records.records_path(str(tmp_path / "ablations.md"))
    assert path == str(tmp_path / "ablations.json")
    assert ablation_records.read(path) == {}  # no file yet
    key = _key(["--loss=onset"])
    run = {"seed": 0, "epochs": 4, "scores": {"all": {"mae": 9.5}}, "curve": [[1], [0.1]]}
    ablation_records.write(path, {"onset/seed_0": {"key": key, "run": run}})
    records = ablation_records.read(path)
    assert ablation_records.matching(records, "onset", 0, key)["run"] == run
    assert ablation_records.matching(records, "onset", 1, key) is None
    assert ablation_records.matching(records, "onset", 0, _key(["--loss=onset"], epochs=8)) is None
    (tmp_path / "ablations.json").write_text(json.dumps({"format": 99, "runs": {}}))
    assert ablation_records.read(path) == {}
    (tmp_path / "ablations.json").write_text("not json")
    assert ablation_records.read(path) == {}
