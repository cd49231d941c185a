"""experiments.profile_summary on a hand-made trace and HLO text with known answers
(profile_factory.py; the end-to-end run through ``bench --profile_dir`` is in test_bench.py)."""

import json

import pytest

from experiments import profile_summary as ps
from profile_factory import HLO, make_trace


def test_summarize_known_answers():
    s = ps.summarize(make_trace(), steps=2, hlo_text=HLO, top=3)
    assert [r["name"] for r in s["ops"]] == ["while.175", "ynn_fusion", "add_divide_fusion.5"]
    w, y, a = s["ops"]
    assert w["ms"] == pytest.approx(0.040) and w["total_ms"] == pytest.approx(0.100)
    assert w["calls"] == 1 and w["opcode"] == "while"
    assert y["ms"] == pytest.approx(0.040) and y["calls"] == 20
    assert a["ms"] == pytest.approx(0.020) and a["origin"] == "Net/lstm/while/body div"
    assert s["listed_ms"] == pytest.approx(0.100)
    assert s["op_count"] == 4  # fusion.99 is not in this HLO module
    assert s["all_ms"] == pytest.approx(0.110)  # + ynn_fusion.7's 10 us
    assert s["busy_ms"] == pytest.approx(0.100)
    assert [r["name"] for r in s["loops"]] == ["while.175"]
    json.dumps(s)  # travels from a worker process as JSON
    with pytest.raises(ValueError):
        ps.summarize(make_trace(), steps=0)


def test_summarize_without_hlo_uses_the_trace_alone():
    s = ps.summarize(make_trace(), steps=2)
    assert s["ops"][0]["name"] == "while.175" and s["ops"][0]["origin"] == ""
    assert s["op_count"] == 5 and not s["labelled"]


def test_markdown():
    s = ps.summarize(make_trace(), steps=2, hlo_text=HLO, top=3)
    text = "\n".join(ps.markdown_lines(s, step_s=200e-6))
    assert ("| `ynn_fusion` | dot, no op_name, in Net/lstm while body: f32[2,32] x f32[32,128] "
            "-> f32[2,128] | model.py:184 _recurrence_forward | 0.040 | 20 | 20.0% |") in text
    assert "| `while.175` | Net/lstm while | model.py:184 _recurrence_forward | 0.040 | 1 |" in text
    assert "- These 3 ops: 0.100 ms per step, 50% of the measured step (0.200 ms" in text
    assert "- All 4 XLA ops seen: 0.110 ms per step, 55% of the measured step" in text
    assert "| `while.175` | Net/lstm while | 0.100 | 0.040 | 1 |" in text  # the loops table
    assert "traced steps" not in text  # no traced_s: busy time alone
    assert "- Some XLA op was running during 0.100 ms of each traced step." in text
    s["traced_s"] = [400e-6, 300e-6, 500e-6]
    text = "\n".join(ps.markdown_lines(s, step_s=200e-6))
    assert ("- The traced steps took 0.300, 0.400, 0.500 ms (profiler on); some XLA op was "
            "running during 0.100 ms of each, 25% of the median traced step") in text
    assert "slower than the timed ones" in text  # 0.4 ms traced vs 0.2 ms timed
    text = "\n".join(ps.markdown_lines(s, None))
    assert "of the measured step" not in text and "| 20 | - |" in text
