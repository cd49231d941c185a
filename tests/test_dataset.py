"""Tests of stylenet_jax.dataset: reading a built dataset, and one-line errors for a missing or
damaged one."""

import json
import os

import numpy as np
import pytest

from dataset_factory import write_dataset
from stylenet_jax import dataset, encoding

STYLES = ("classical", "jazz")


@pytest.fixture
def data_dir(tmp_path):
    return write_dataset(str(tmp_path / "data"), styles=STYLES, n_train=3, n_val=2)


def rewrite_manifest(data_dir: str, change) -> None:
    """Loads the manifest, applies ``change(manifest)`` in place, writes it back."""
    path = os.path.join(data_dir, dataset.MANIFEST)
    with open(path) as f:
        manifest = json.load(f)
    change(manifest)
    with open(path, "w") as f:
        json.dump(manifest, f)


def test_read_manifest_and_styles(data_dir):
    manifest = dataset.read_manifest(data_dir)
    assert manifest["format"] == dataset.FORMAT and manifest["version"] == dataset.VERSION
    assert [s["id"] for s in manifest["songs"]] == [
        f"{style}_{k}" for style in STYLES for k in range(5)]
    assert dataset.dataset_styles(data_dir) == list(STYLES)
    # The manifest's order of styles is the head order, not the alphabet.
    rewrite_manifest(data_dir, lambda m: m.update(styles=["jazz", "classical"]))
    assert dataset.dataset_styles(data_dir) == ["jazz", "classical"]


def test_load_songs_by_split_and_style_in_manifest_order(data_dir):
    everything = dataset.load_songs(data_dir)
    assert [s.id for s in everything] == [f"{st}_{k}" for st in STYLES for k in range(5)]
    train = dataset.load_songs(data_dir, "train")
    validation = dataset.load_songs(data_dir, "validation")
    assert [s.id for s in train] == [f"{st}_{k}" for st in STYLES for k in range(3)]
    assert [s.id for s in validation] == [f"{st}_{k}" for st in STYLES for k in (3, 4)]
    assert dataset.load_songs(data_dir, "test") == []
    jazz = dataset.load_songs(data_dir, "validation", styles=["jazz"])
    assert [(s.id, s.style) for s in jazz] == [("jazz_3", "jazz"), ("jazz_4", "jazz")]
    assert dataset.load_songs(data_dir, styles=[]) == []


def test_songs_hold_the_arrays_written_and_their_target(data_dir):
    for song in dataset.load_songs(data_dir):
        with np.load(os.path.join(data_dir, "songs", f"{song.id}.npz")) as written:
            np.testing.assert_array_equal(song.inputs, written["inputs"])
            np.testing.assert_array_equal(song.velocities, written["velocities"])
        t = song.inputs.shape[0]
        assert 60 <= t < 130
        assert song.inputs.dtype == song.velocities.dtype == np.uint8
        assert song.inputs.shape == (t, encoding.INPUT_SIZE)
        assert song.velocities.shape == (t, encoding.NUM_KEYS)
        target = song.target
        assert target.dtype == np.float32 and target.shape == (t, encoding.NUM_KEYS)
        np.testing.assert_allclose(target * 127, song.velocities, atol=1e-4)
        held = encoding.held_channels(song.inputs) > 0
        assert held.any() and (target[~held] == 0).all() and (target[held] > 0).mean() > 0.9


def test_a_missing_or_damaged_manifest_is_a_one_line_error(tmp_path, data_dir):
    cases = []  # (folder, what the message says)
    cases.append((str(tmp_path / "nowhere"), "no manifest.json; build one with "
                  "`python -m data_prep.build"))
    manifest = os.path.join(data_dir, dataset.MANIFEST)
    good = open(manifest, "rb").read()

    def damaged(name: str, content: bytes, expected: str) -> None:
        folder = tmp_path / name
        folder.mkdir()
        (folder / dataset.MANIFEST).write_bytes(content)
        cases.append((str(folder), expected))

    damaged("truncated", good[:len(good) // 2], "not valid JSON")
    damaged("binary", b"\xff\xfe\x00garbage", "not valid JSON")
    damaged("empty", b"", "not valid JSON")
    damaged("a_list", b"[1, 2]", "not a stylenet-jax-dataset v1 manifest")
    other = json.loads(good)
    damaged("other_version", json.dumps({**other, "version": 2}).encode(),
            "not a stylenet-jax-dataset v1 manifest")
    damaged("other_format", json.dumps({**other, "format": "x"}).encode(), "not a stylenet")
    damaged("no_styles", json.dumps({k: v for k, v in other.items() if k != "styles"}).encode(),
            "no list of style names")
    damaged("no_songs", json.dumps({**other, "songs": {"a": 1}}).encode(), "no list of songs")
    entry = {k: v for k, v in other["songs"][0].items() if k != "split"}
    damaged("no_split", json.dumps({**other, "songs": [entry]}).encode(),
            "song entry 0 lacks split")
    for folder, expected in cases:
        for read in (dataset.read_manifest, dataset.load_songs, dataset.dataset_styles):
            with pytest.raises(dataset.DatasetError) as raised:
                read(folder)
            message = str(raised.value)
            assert expected in message and folder in message and "\n" not in message, message


def test_a_missing_or_damaged_song_file_is_a_one_line_error(data_dir):
    path = os.path.join(data_dir, "songs", "jazz_4.npz")
    good = open(path, "rb").read()
    with np.load(path) as z:
        inputs, velocities = z["inputs"], z["velocities"]
    flipped = bytearray(good)
    flipped[good.index(b"\x93NUMPY") + 200] ^= 0xFF  # a member's bytes: its CRC fails
    np.save(path + ".npy", inputs)
    plain_npy = open(path + ".npy", "rb").read()

    def npz(**arrays) -> bytes:
        np.savez(path + ".tmp.npz", **arrays)
        return open(path + ".tmp.npz", "rb").read()

    cases = {"truncated": good[:len(good) // 2], "empty": b"", "garbage": b"not a zip",
             "corrupted member": bytes(flipped), "a .npy, not a .npz": plain_npy,
             "no velocities": npz(inputs=inputs),
             "wrong shape": npz(inputs=inputs[:, :88], velocities=velocities),
             "different lengths": npz(inputs=inputs, velocities=velocities[1:])}
    for name, content in cases.items():
        with open(path, "wb") as f:
            f.write(content)
        with pytest.raises(dataset.DatasetError) as raised:
            dataset.load_songs(data_dir, "validation")
        message = str(raised.value)
        assert path in message and "rebuild the dataset" in message, (name, message)
        assert "\n" not in message, (name, message)
        # The other split does not read the damaged file.
        assert len(dataset.load_songs(data_dir, "train")) == 6
    os.remove(path)
    with pytest.raises(dataset.DatasetError, match="unreadable song arrays"):
        dataset.load_songs(data_dir)
