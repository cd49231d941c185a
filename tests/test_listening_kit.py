"""experiments.listening_kit: which excerpts, which pairs in which order, the key and page."""

import csv
import io
import json
import re

import numpy as np
import pytest

from experiments import listening_kit
from stylenet_jax import midi
from stylenet_jax.performances import Performed


def _performed(pid, style, piece, onsets):
    n = len(onsets)
    notes = midi.Notes(np.full(n, 60, np.int16), np.arange(n, dtype=np.int64),
                       np.arange(n, dtype=np.int64) + 1, np.full(n, 64, np.uint8),
                       np.zeros(n, np.uint8), np.zeros(n, np.int32), np.arange(n, dtype=np.int32))
    return Performed(pid, style, piece, f"/x/{pid}.mid", notes, 480,
                     np.asarray(onsets, np.float64))


def _corpus():
    dense = np.arange(0, 60, 0.25)  # 60 s, four notes a second
    return [_performed("c1", "classical", "bach", dense),
            _performed("c2", "classical", "bach", dense),
            _performed("c3", "classical", "mozart", dense),
            _performed("j1", "jazz", "blue", dense),
            _performed("j2", "jazz", "green", np.arange(0, 200, 0.5)),
            _performed("sparse", "jazz", "tiny", [0.0, 5.0, 30.0])]


def test_excerpt_starts_hold_enough_notes_and_end_inside_the_piece():
    onsets = np.array([0.0, 1, 2, 3, 4, 5, 6, 20])
    starts = listening_kit.excerpt_starts(onsets, length=4.0, min_notes=4)
    assert starts.tolist() == [0.0, 1.0, 2.0, 3.0]  # from 4.0 only 4, 5, 6 lie before 7.95
    assert listening_kit.excerpt_starts(onsets, 4.0, 9).size == 0


def test_excerpts_take_styles_in_turn_new_pieces_first_and_are_seeded():
    performed = _corpus()
    chosen = listening_kit.choose_excerpts(performed, 6, 10.0, 12, np.random.default_rng(3))
    styles = [performed[e.performance].style for e in chosen]
    assert styles == ["classical", "jazz"] * 3
    classical_pieces = [performed[e.performance].piece for e in chosen if
                        performed[e.performance].style == "classical"]
    assert sorted(classical_pieces[:2]) == ["bach", "mozart"]  # no repeat before both ran
    assert all(performed[e.performance].id != "sparse" for e in chosen)
    for e in chosen:
        seconds = performed[e.performance].seconds
        inside = ((seconds >= e.start_s) & (seconds < e.start_s + e.seconds)).sum()
        assert inside >= 12 and e.start_s + e.seconds <= seconds[-1]
    again = listening_kit.choose_excerpts(performed, 6, 10.0, 12, np.random.default_rng(3))
    assert again == chosen
    with pytest.raises(ValueError, match="min_notes"):
        listening_kit.choose_excerpts(performed[-1:], 1, 10.0, 12, np.random.default_rng(0))


def test_whole_piece_is_within_45_to_180_seconds_when_one_is():
    performed = _corpus()
    whole = listening_kit.choose_whole_piece(performed, np.random.default_rng(0))
    assert whole.kind == "whole" and whole.start_s == 0.0
    assert 45 <= performed[whole.performance].seconds.max() <= 180
    only_long = listening_kit.choose_whole_piece([performed[4]], np.random.default_rng(0))
    assert only_long.seconds == pytest.approx(199.5 + 2.0)
    assert listening_kit.choose_whole_piece([performed[-1]], np.random.default_rng(0)) is None


def test_pairs_cover_every_excerpt_and_system_once_in_random_order_whole_last():
    excerpts = [listening_kit.Excerpt(i, float(i), 10.0) for i in range(20)]
    excerpts.append(listening_kit.Excerpt(99, 0.0, 60.0, "whole"))
    pairs = listening_kit.make_pairs(excerpts, ["model", "features"], np.random.default_rng(1))
    assert [p.number for p in pairs] == list(range(1, 43))
    assert sorted((p.excerpt.performance, p.system) for p in pairs) == sorted(
        (e.performance, s) for e in excerpts for s in ("model", "features"))
    assert {p.excerpt.kind for p in pairs[-2:]} == {"whole"}
    firsts = [p.human_first for p in pairs]
    assert 10 < sum(firsts) < 32  # both orders, about half each
    assert [p.excerpt.performance for p in pairs[:40]] != sorted(
        p.excerpt.performance for p in pairs[:40])  # shuffled


def test_key_says_who_is_human_and_the_page_does_not():
    performed = _corpus()
    excerpts = [listening_kit.Excerpt(0, 1.5, 10.0), listening_kit.Excerpt(3, 2.0, 10.0)]
    pairs = listening_kit.make_pairs(excerpts, ["model", "features"], np.random.default_rng(0))
    rows = list(csv.DictReader(io.StringIO(listening_kit.answer_key("k1", pairs, performed))))
    assert [r["human"] for r in rows] == [p.human for p in pairs]
    assert {r["kit"] for r in rows} == {"k1"} and rows[0].keys() == set(
        listening_kit.KEY_FIELDS)
    html = listening_kit.page("k1", "Who </script> plays?", pairs)
    data = json.loads(re.search(r"const KIT = (\{.*?\});\n", html).group(1))
    assert [p["pair"] for p in data["pairs"]] == [1, 2, 3, 4]
    assert data["answers"] == ["A", "B", "cannot tell"]
    for word in ("model", "features", "human_first", "/x/c1.mid"):
        assert word not in json.dumps(data)
    assert "Who &lt;/script> plays?" in html and html.count("</script>") == 1
