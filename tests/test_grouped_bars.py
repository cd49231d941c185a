"""evaluation_plots.plot_grouped_bars: the bar chart of tree_features and classifier_features."""

import numpy as np
import pytest

from stylenet_jax.evaluation_plots import plot_grouped_bars


def test_writes_one_bar_per_label_and_series(tmp_path, monkeypatch):
    import matplotlib.axes

    drawn = []
    real_barh = matplotlib.axes.Axes.barh

    def spy(self, y, width, *args, **kwargs):
        drawn.append((np.asarray(y).copy(), np.asarray(width).copy(), kwargs["label"]))
        return real_barh(self, y, width, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "barh", spy)
    path = str(tmp_path / "bars.png")
    series = {"classical": ([1.0, 2.0, 0.5], np.array([0.1, 0.2, 0.0])),
              "jazz": ([0.3, -0.2, 0.4], np.array([[0.1, 0.1, 0.1], [0.2, 0.2, 0.2]]))}
    assert plot_grouped_bars(path, ["pitch", "metre", "tempo"], series, xlabel="x") == path
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert [label for _, _, label in drawn] == ["classical", "jazz"]
    np.testing.assert_allclose(drawn[1][1], [0.3, -0.2, 0.4])
    # the second series sits below the first within each label's group
    assert np.all(drawn[1][0] > drawn[0][0]) and np.all(drawn[1][0] < drawn[0][0] + 1)


def test_rejects_a_series_of_the_wrong_length(tmp_path):
    path = tmp_path / "bars.png"
    with pytest.raises(ValueError, match="2 values and 2 errors for 3 labels"):
        plot_grouped_bars(str(path), ["a", "b", "c"], {"s": ([1.0, 2.0], np.zeros(2))},
                          xlabel="x")
    assert not path.exists()
