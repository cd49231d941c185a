"""data_prep.split: the train/validation/test split (per style, grouped by piece, seeded), and a
file's style and piece."""

from data_prep import split


def test_split_is_deterministic_grouped_by_piece_and_seeded():
    songs = [{"style": "a", "piece": f"p{i // 3}"} for i in range(60)] + \
            [{"style": "b", "piece": f"q{i}"} for i in range(40)]
    split.split_by_piece(songs, 0.05, seed=0)
    first = [s["split"] for s in songs]
    split.split_by_piece(songs, 0.05, seed=0)
    assert [s["split"] for s in songs] == first
    for style, n in (("a", 3), ("b", 2)):
        assert sum(s["split"] == "validation" for s in songs if s["style"] == style) == n
    pieces = {}
    for s in songs:
        pieces.setdefault(s["piece"], set()).add(s["split"])
    assert all(len(v) == 1 for v in pieces.values())
    split.split_by_piece(songs, 0.05, seed=1)
    assert [s["split"] for s in songs] != first


def test_test_split_is_by_piece_and_stable_under_other_filters():
    """--test_fraction holds out whole pieces, about the asked share of them, and a piece's
    side does not depend on which other songs a build kept; test_fraction=0 is the paper's
    split unchanged."""
    songs = [{"style": "a", "piece": f"p{i // 3}"} for i in range(600)] + \
            [{"style": "b", "piece": f"q{i}"} for i in range(400)]
    split.split_by_piece(songs, 0.05, seed=0)
    paper = [s["split"] for s in songs]
    assert "test" not in paper
    split.split_by_piece(songs, 0.05, seed=0, test_fraction=0.2)
    sides = {}
    for s in songs:
        sides.setdefault((s["style"], s["piece"]), set()).add(s["split"])
    assert all(len(v) == 1 for v in sides.values())
    test_pieces = {k for k, v in sides.items() if v == {"test"}}
    for style, pieces in (("a", 200), ("b", 400)):
        share = sum(k[0] == style for k in test_pieces) / pieces
        assert 0.13 < share < 0.27, share  # 0.2 on average
        rest = [s for s in songs if s["style"] == style and s["split"] != "test"]
        assert sum(s["split"] == "validation" for s in rest) == max(1, round(0.05 * len(rest)))
    # A build that keeps only every other song holds out the same pieces.
    half = [dict(s) for s in songs[::2]]
    split.split_by_piece(half, 0.05, seed=0, test_fraction=0.2)
    assert {(s["style"], s["piece"]) for s in half if s["split"] == "test"} == {
        (s["style"], s["piece"]) for s in songs[::2] if s["split"] == "test"}
    split.split_by_piece(songs, 0.05, seed=0)
    assert [s["split"] for s in songs] == paper


def test_style_and_piece_from_the_flag_the_catalogue_or_the_folder(tmp_path):
    (tmp_path / "manifest.csv").write_text("file,style,piece\nx/a.mid,pop,Song A\nb.mid,,B\n",
                                           encoding="utf-8")
    catalogue = split.read_catalogue(str(tmp_path))
    assert set(catalogue) == {"x/a.mid", "b.mid"}
    assert split.style_and_piece("x/a.mid", catalogue, None) == ("pop", "Song A")
    assert split.style_and_piece("x/a.mid", catalogue, "jazz") == ("jazz", "Song A")
    assert split.style_and_piece("b.mid", catalogue, None) == (None, "B")
    assert split.style_and_piece("classical/c.mid", catalogue, None) == ("classical", "classical/c")
    assert split.read_catalogue(str(tmp_path / "nowhere")) == {}
    draw = split.piece_draw(0, "pop", "Song A")
    assert 0 <= draw < 1 and draw == split.piece_draw(0, "pop", "Song A")
    assert draw != split.piece_draw(1, "pop", "Song A")
