"""experiments.hlo_labels: shortened op names, the HLO text read into instructions, and each
instruction's label (on the hand-made HLO of profile_factory.py)."""

from experiments import hlo_labels as hl
from profile_factory import HLO


def test_shorten_op_name():
    assert (hl.shorten_op_name("jit(step)/while/body/closed_call/dnh,dhk->dnk/dot_general")
            == "while/body/dnh,dhk->dnk dot_general")
    assert (hl.shorten_op_name("jit(traced)/transpose(jvp(StyleNet))/vmap(heads)/layer_0/while"
                               "/body/closed_call/mul")
            == "backward: StyleNet/vmap(heads)/layer_0/while/body mul")
    assert hl.shorten_op_name("jit(traced)/jvp(StyleNet)/lt") == "StyleNet lt"
    assert hl.shorten_op_name("jit(traced)/mul") == "mul"
    assert hl.shorten_op_name("reduce_sum") == "reduce_sum"


def test_parse_hlo():
    module = hl.parse_hlo(HLO)
    assert module.name == "jit_step"
    w = module.instructions["while.175"]
    assert w.opcode == "while" and w.computation == "main.106"
    assert w.op_name == "jit(step)/jvp(Net)/lstm/while" and w.stack_frame == 1
    assert set(w.called) == {"region_12.47", "region_13.48"}
    assert module.bodies == {"region_12.47"}
    assert module.callers["fused_computation"] == "ynn_fusion"
    assert module.roots["fused_computation"] == "dot.26"
    dot = module.instructions["dot.26"]
    assert dot.shape == "f32[2,128]" and dot.operands == ["param_0", "param_1"]
    assert module.instructions["tuple.228"].shape == "(s32[], f32[2,32], f32[32,128])"
    assert module.frames == {1: "model.py:184 _recurrence_forward",
                             2: "training.py:161 clip_by_tensor_norm.clip"}


def test_labels():
    labels = hl.hlo_labels(HLO, ["while.175", "ynn_fusion", "add_divide_fusion.5",
                                 "ynn_fusion.7", "nope"])
    assert labels["while.175"] == hl.Label("Net/lstm while", "model.py:184 _recurrence_forward")
    # No metadata anywhere: what it computes, the loop it sits in (and that loop's source).
    assert labels["ynn_fusion"] == hl.Label(
        "dot, no op_name, in Net/lstm while body", "model.py:184 _recurrence_forward",
        "f32[2,32] x f32[32,128] -> f32[2,128]")
    assert labels["add_divide_fusion.5"].origin == "Net/lstm/while/body div"
    assert labels["ynn_fusion.7"] == hl.Label(
        "square", "training.py:161 clip_by_tensor_norm.clip", "fusion computing reduce-window")
    assert labels["nope"].origin == "?"
