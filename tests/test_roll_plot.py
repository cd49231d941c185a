"""stylenet_jax.roll_plot and ``stylize --plot``: the before/after picture of a performance."""

import os

import numpy as np
import pytest

from performer_factory import cli, export_tiny_model, rich_file
from stylenet_jax import roll_plot

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return export_tiny_model(str(tmp_path_factory.mktemp("model") / "model.npz"))


def _pixels(path):
    from matplotlib.image import imread

    return imread(path)[..., :3]  # float RGB in 0..1


def _count_colour(pixels, rgb, tolerance=0.02):
    return int((np.abs(pixels - np.asarray(rgb)[:3]).max(-1) < tolerance).sum())


def _notes(n=40):
    start = np.arange(n) * 0.25
    return start, start + 0.2, 60 + (np.arange(n) % 12)


def test_plot_colours_each_note_by_its_velocity_on_one_scale(tmp_path):
    from matplotlib import colormaps

    loud = colormaps[roll_plot.COLOUR_MAP](1.0)  # velocity 127
    start, end, pitch = _notes()
    flat = np.full(len(start), 64)
    accented = flat.copy()
    accented[::8] = 127
    quiet = roll_plot.plot_performance(str(tmp_path / "flat.png"), start, end, pitch, flat,
                                       flat, "flat")
    loud_path = roll_plot.plot_performance(str(tmp_path / "accents.png"), start, end, pitch,
                                           flat, accented, "accents")
    assert open(quiet, "rb").read(8) == PNG_MAGIC
    # the colour bar shows 127's colour in both; the five accents add their bars of it
    assert _count_colour(_pixels(loud_path), loud) > _count_colour(_pixels(quiet), loud) + 100
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")]


def test_plot_refuses_no_notes_and_writes_nothing(tmp_path):
    empty = np.zeros(0)
    with pytest.raises(ValueError, match="no notes"):
        roll_plot.plot_performance(str(tmp_path / "x.png"), empty, empty, empty, empty, empty,
                                   "")
    assert os.listdir(tmp_path) == []


def test_cli_plot_for_a_file_and_for_a_folder(tmp_path, model_path):
    source = rich_file(str(tmp_path / "in.mid"), bars=4)
    picture = str(tmp_path / "pictures" / "in.png")
    done = cli(source, "-o", str(tmp_path / "out.mid"), "--style=jazz",
               f"--checkpoint={model_path}", "--plot", picture)
    assert done.returncode == 0, done.stderr
    assert open(picture, "rb").read(8) == PNG_MAGIC and f"picture: {picture}" in done.stdout

    folder = tmp_path / "songs"
    folder.mkdir()
    rich_file(str(folder / "a.mid"), bars=2)
    rich_file(str(folder / "b.mid"), bars=2)
    done = cli(str(folder), "-o", str(tmp_path / "performed"), "--style=classical",
               f"--checkpoint={model_path}", "--plot", str(tmp_path / "rolls"))
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(tmp_path / "rolls")) == ["a.png", "b.png"]


def test_cli_bad_plot_target_is_one_line_exit_2_and_writes_nothing(tmp_path, model_path):
    source = rich_file(str(tmp_path / "in.mid"), bars=2)
    out = str(tmp_path / "out.mid")
    for plot in (str(tmp_path / "roll.jpg"), str(tmp_path)):
        done = cli(source, "-o", out, "--style=jazz", f"--checkpoint={model_path}",
                   "--plot", plot)
        assert done.returncode == 2 and "--plot" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert not os.path.exists(out)
    (tmp_path / "songs").mkdir()
    rich_file(str(tmp_path / "songs" / "a.mid"), bars=2)
    done = cli(str(tmp_path / "songs"), "-o", str(tmp_path / "o"), "--style=jazz",
               f"--checkpoint={model_path}", "--plot", source)
    assert done.returncode == 2 and "not a folder" in done.stderr
    assert not os.path.exists(tmp_path / "o")


def test_default_output_names_carry_the_controls_and_the_seed(tmp_path, model_path):
    source = rich_file(str(tmp_path / "in.mid"), bars=2)
    assert cli(source, "--style=jazz", "--strength=0.5", "--velocity_range=40,100",
               f"--checkpoint={model_path}").returncode == 0
    assert cli(source, "--baseline=random", "--seed=3").returncode == 0
    assert cli(source, "--baseline=random").returncode == 0
    assert sorted(n for n in os.listdir(tmp_path) if n != "in.mid") == [
        "in.jazz-strength50-range40to100.mid", "in.random-seed3.mid", "in.random.mid"]
