"""experiments.listening_test end to end: FluidSynth renders the kit, a real headless
Chromium plays its page, records answers and downloads the CSV, listening_score scores it."""

import csv
import glob
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from experiments import listening_audio
from listening_factory import chromium, require_audio, require_browser, served, write_songs
from midi_factory import midi_file, notes_track
from performer_factory import ROOT, export_tiny_model

EXCERPT_S = 4.0


def kit_command(*args, env=None):
    return subprocess.run([sys.executable, "-m", "experiments.listening_test", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=None if env is None else {**os.environ, **env})


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    require_audio()
    root = tmp_path_factory.mktemp("listening")
    model = export_tiny_model(str(root / "model.npz"))
    songs = write_songs(str(root / "songs"))
    out = str(root / "kit")
    done = kit_command(f"--midi_dir={songs}", f"--out={out}", f"--model=tiny={model}",
                       "--baselines=random", "--humanize=tiny_h=tiny:0.75",
                       "--palette=tiny_p=tiny_h", "--excerpts=4",
                       f"--excerpt_seconds={EXCERPT_S}",
                       "--min_notes=4", "--sample_rate=16000", "--seed=1")
    assert done.returncode == 0, done.stderr
    assert "Give listeners" in done.stdout
    with open(os.path.join(out, "answer_key.csv"), newline="") as f:
        return out, list(csv.DictReader(f))


def test_rendering_follows_the_velocities():
    require_audio()
    import tempfile

    levels = []
    with tempfile.TemporaryDirectory() as folder:
        for velocity in (30, 110):
            path = os.path.join(folder, f"v{velocity}.mid")
            midi_file(notes_track([(i * 480, i * 480 + 400, 60 + i % 5, velocity)
                                   for i in range(8)])).save(path)
            samples = listening_audio.render(path, listening_audio.find_soundfont(), 16000,
                                             listening_audio.find_fluidsynth())
            levels.append(float(np.sqrt(np.mean(samples ** 2))))
    assert levels[1] > 2 * levels[0] > 0


@pytest.mark.slow  # renders the kit (28 s on 2 cores); in CI (--runslow), outside the default suite
def test_kit_pairs_each_excerpt_with_every_system_and_keeps_the_key_apart(kit):
    out, key = kit
    assert sorted(os.listdir(out)) == ["answer_key.csv", "kit.json", "page"]
    assert {r["system"] for r in key} == {"tiny", "random", "tiny_h", "tiny_p"}
    assert sum(r["kind"] == "excerpt" for r in key) == 16  # 4 excerpts x 4 systems
    assert {r["human"] for r in key} == {"A", "B"}
    page = open(os.path.join(out, "page", "index.html")).read()
    assert "tiny" not in page and "random" not in page and "answer_key" not in page
    model_clips = {}
    for row in key:
        clips = [os.path.join(out, "page", "clips", f"{int(row['pair']):03d}-{s}.wav")
                 for s in "ab"]
        (a, rate), (b, _) = (listening_audio.read_wav(c) for c in clips)
        assert rate == 16000 and len(a) == len(b) == round(float(row["seconds"]) * rate)
        assert max(np.abs(a).max(), np.abs(b).max()) == pytest.approx(0.89, abs=0.01)
        assert not np.allclose(a, b, atol=1e-3)  # the system's velocities are not the pianist's
        system_clip = b if row["human"] == "A" else a
        model_clips.setdefault((row["file"], row["start_s"]), {})[row["system"]] = system_clip
    assert any({"tiny", "tiny_h"} <= set(clips) for clips in model_clips.values())
    for clips in model_clips.values():  # the humanized model is not the model as it plays
        if {"tiny", "tiny_h"} <= set(clips):
            assert not np.allclose(clips["tiny"] / np.abs(clips["tiny"]).max(),
                                   clips["tiny_h"] / np.abs(clips["tiny_h"]).max(), atol=1e-3)
    # the pianist's clip of one excerpt is the same sound in each of its pairs
    by_excerpt = {}
    for row in key:
        by_excerpt.setdefault((row["file"], row["start_s"]), []).append(row)
    rows = next(rows for rows in by_excerpt.values() if len(rows) >= 2)[:2]
    humans = [listening_audio.read_wav(os.path.join(
        out, "page", "clips", f"{int(r['pair']):03d}-{r['human'].lower()}.wav"))[0]
        for r in rows]
    scale = np.abs(humans[0]).max() / np.abs(humans[1]).max()
    np.testing.assert_allclose(humans[0], humans[1] * scale, atol=2e-3)


@pytest.mark.slow  # needs the rendered kit; in CI (--runslow), outside the default suite
def test_kit_refuses_an_existing_kit_and_missing_fluidsynth_in_one_line(kit, tmp_path):
    out, _ = kit
    songs = write_songs(str(tmp_path / "songs"))
    done = kit_command(f"--midi_dir={songs}", f"--out={out}")
    assert done.returncode == 2 and "already exists" in done.stderr
    fresh = str(tmp_path / "new")
    done = kit_command(f"--midi_dir={songs}", f"--out={fresh}", env={"PATH": "/nonexistent"})
    assert done.returncode == 2 and "apt-get install fluidsynth" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not os.path.exists(fresh)
    assert not glob.glob(str(tmp_path / ".new.partial-*"))


@pytest.mark.slow  # needs the rendered kit; in CI (--runslow), outside the default suite
def test_page_plays_records_answers_and_exports_a_csv_that_scores(kit, tmp_path):
    require_browser()
    from selenium.webdriver.common.by import By

    out, key = kit
    downloads = str(tmp_path / "downloads")
    os.makedirs(downloads)
    with served(os.path.join(out, "page")) as url, chromium(downloads) as browser:
        browser.get(url + "/index.html")
        assert len(browser.find_elements(By.CSS_SELECTOR, ".pair")) == len(key)
        durations = browser.execute_async_script(
            "const done = arguments[0]; const audio = [...document.querySelectorAll('audio')];"
            "Promise.all(audio.map(a => a.readyState >= 1 ? null : new Promise(r => "
            "a.addEventListener('loadedmetadata', r)))).then(() => done(audio.map(a => "
            "a.duration)));")
        assert len(durations) == 2 * len(key)
        assert durations[0] == pytest.approx(EXCERPT_S, abs=0.05)
        played = browser.execute_async_script(
            "const done = arguments[0]; const [a, b] = document.querySelectorAll('audio');"
            "a.play().then(() => setTimeout(() => { const t = a.currentTime; b.play().then("
            "() => setTimeout(() => done([t, a.paused, b.currentTime]), 300)); }, 700))"
            ".catch(e => done(String(e)));")
        assert played[0] > 0.2 and played[1] is True and played[2] > 0  # one clip at a time
        answers = {1: "A", 2: "B", 3: "cannot tell"}
        for pair, answer in answers.items():
            browser.find_element(By.CSS_SELECTOR,
                                 f"input[name=pair-{pair}][value='{answer}']").click()
        browser.find_element(By.ID, "listener").send_keys("Ann, O'Neil")
        browser.refresh()  # answers and name survive a reload
        assert browser.find_element(By.CSS_SELECTOR,
                                    "input[name=pair-2][value=B]").is_selected()
        assert browser.find_element(By.ID, "progress").text.startswith("3 of ")
        browser.find_element(By.ID, "download").click()
        deadline = time.time() + 20
        while not glob.glob(os.path.join(downloads, "*.csv")) and time.time() < deadline:
            time.sleep(0.2)
    [exported] = glob.glob(os.path.join(downloads, "*.csv"))
    with open(exported, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(int(r["pair"]), r["answer"]) for r in rows] == list(answers.items())
    assert {r["listener"] for r in rows} == {"Ann, O'Neil"}
    done = subprocess.run([sys.executable, "-m", "experiments.listening_score", f"--kit={out}",
                           exported], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "3 answers from 1 listener(s)" in done.stdout and "| Ann, O'Neil | 3 |" in done.stdout


@pytest.mark.slow  # in CI (--runslow); keeps the default suite near 10 min
def test_kit_and_plot_on_real_performances_with_the_shipped_model(corpus_dir, tmp_path):
    """The README's commands on two pianists of the corpus: a kit with the shipped model and
    the tree baseline, and stylize's --plot with the controls."""
    require_audio()
    songs = tmp_path / "songs"
    for style in ("classical", "pop"):
        (songs / style).mkdir(parents=True)
        first = sorted((corpus_dir / style).glob("*.mid"))[0]
        os.symlink(first, songs / style / first.name)
    out = str(tmp_path / "kit")
    done = kit_command(f"--midi_dir={songs}", f"--out={out}", "--excerpts=2",
                       "--nowhole_piece", "--sample_rate=16000")
    assert done.returncode == 0, done.stderr
    with open(os.path.join(out, "answer_key.csv"), newline="") as f:
        key = list(csv.DictReader(f))
    assert sorted(r["system"] for r in key) == ["features", "features", "model", "model"]
    assert {r["style"] for r in key} == {"classical", "pop"}
    source = str(next((songs / "pop").iterdir()))
    styled = subprocess.run(
        [sys.executable, "-m", "stylenet_jax.stylize", source, "-o", str(tmp_path / "p.mid"),
         "--style=pop", "--strength=0.7", "--velocity_range=30,110",
         "--plot", str(tmp_path / "p.png")], cwd=ROOT, capture_output=True, text=True,
        timeout=600)
    assert styled.returncode == 0, styled.stderr
    assert open(tmp_path / "p.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"
