"""data_prep.filters: which examined files a dataset keeps, the one-line reasons for the others,
their table columns and the summary table."""

from data_prep import filters
from stylenet_jax import encoding

KEPT = {"notes": 10, "out_of_range": 0, "n_velocities": 30, "time_signatures": [[4, 4]],
        "steps": 100, "ticks_per_beat": 480}


def test_meters_by_list_quarter_beat_or_any():
    assert filters.meter_allowed([], {(4, 4)})  # a file with no time signature is in 4/4
    assert filters.meter_allowed([[4, 4], [3, 4]], {(4, 4), (3, 4)})
    assert not filters.meter_allowed([[4, 4], [3, 4]], {(4, 4)})
    assert filters.meter_allowed([[3, 4], [5, 4]], filters.QUARTER_BEAT)
    assert not filters.meter_allowed([[6, 8]], filters.QUARTER_BEAT)
    assert filters.meter_allowed([[7, 8]], "any")


def test_rejections_and_their_columns():
    cases = [
        ({"error": "x.mid: empty file"}, "unreadable: x.mid: empty file", "unreadable"),
        (dict(KEPT, notes=0), "no piano notes", "no piano notes"),
        (dict(KEPT, steps=encoding.MAX_STEPS + 1), encoding.too_long(encoding.MAX_STEPS + 1),
         "too long"),
        (dict(KEPT, time_signatures=[[4, 4], [3, 4]]), "time signature 4/4,3/4 not allowed",
         "time signature"),
        (dict(KEPT, n_velocities=5), "5 distinct velocities (< 20)", "too few velocities"),
    ]
    assert filters.rejection(KEPT, {(4, 4)}, 20) is None
    for facts, reason, kind in cases:
        assert filters.rejection(facts, {(4, 4)}, 20) == reason
        assert filters.reason_kind(reason) == kind
    assert filters.reason_kind("no style (not in a sub-folder; use --style)") == (
        "no style (not in a sub-folder; use --style)")


def test_summary_table_counts_splits_and_reasons_per_style():
    songs = [{"style": "jazz", "split": "train"}, {"style": "jazz", "split": "validation"},
             {"style": "pop", "split": "test"}]
    rejected = [{"style": "jazz", "reason": "no piano notes"},
                {"style": None, "reason": "no style (not in a sub-folder; use --style)"}]
    rows = [line.split() for line in filters.summary_table(songs, rejected).splitlines()]
    assert rows[0][:6] == ["style", "kept", "train", "validation", "test", "rejected"]
    assert rows[1:] == [["(none)", "0", "0", "0", "0", "1", "0", "1"],
                        ["jazz", "2", "1", "1", "0", "1", "1", "0"],
                        ["pop", "1", "0", "0", "1", "0", "0", "0"],
                        ["total", "3", "1", "1", "1", "2", "1", "1"]]
