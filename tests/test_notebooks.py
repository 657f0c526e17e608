"""The two notebooks execute headless (nbclient), with and without artifacts.

With artifacts: the smoke sweep of test_tables.py (2 GANs, 4 U-Nets, all four tables); every
figure the notebooks promise must have been written.  Without: they must say what to run first.
"""
import os
from pathlib import Path

import pytest

from gan_seg_aug.config import GANConfig
from gan_seg_aug.layout import gan_dir_name


nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def run_notebook(name: str, env: dict) -> str:
    """Execute ``notebooks/<name>.ipynb`` with ``env``; returns all text output (cell errors raise)."""
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update({k: str(v) for k, v in env.items()})  # the kernel inherits the environment
    try:
        nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            texts.append(out.get("text", "") or str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(texts)


def test_notebooks_without_artifacts_say_what_to_run(tmp_path):
    env = {"GAN_SEG_AUG_RUNS_DIR": tmp_path / "runs", "GAN_SEG_AUG_RESULTS_DIR": tmp_path / "results",
           "GAN_SEG_AUG_GAN_DIR": "", "GAN_SEG_AUG_FIG_DIR": tmp_path / "figs"}
    assert "train one first" in run_notebook("generated_samples", env)
    text = run_notebook("results", env)
    assert "run experiments/tables.py first" in text
    assert not (tmp_path / "figs").exists()


@pytest.mark.slow
def test_notebooks_on_smoke_artifacts(smoke_sweep, tmp_path):
    figs = tmp_path / "figs"
    gan_dir = smoke_sweep["runs"] / "scr_lung" / "smoke" / "synthetic" / "fold1" / gan_dir_name(GANConfig.critic_norm)
    env = {"GAN_SEG_AUG_RUNS_DIR": smoke_sweep["runs"], "GAN_SEG_AUG_RESULTS_DIR": smoke_sweep["results"],
           "GAN_SEG_AUG_GAN_DIR": gan_dir, "GAN_SEG_AUG_FIG_DIR": figs}
    text = run_notebook("generated_samples", env)
    assert "scr_lung, profile smoke" in text
    text = run_notebook("results", env)
    assert "not a reproduction (smoke profile, synthetic data)" in text
    expected = {"generated_pairs.png", "raw_vs_thresholded.png", "latent_interpolation.png", "category_iou.png",
                "scr_best_worst.png", "cityscapes_best_worst.png"}
    assert {p.name for p in figs.glob("*.png")} == expected
    assert all(p.stat().st_size > 1000 for p in figs.glob("*.png"))


# ----------------------------------------------------------------------------- viz helpers (fast)

class FakeGenerator:
    """Stands in for a pair generator: mask channel = a ramp shifted by z[0], image = its negative."""

    input_shape = (None, 4)

    def __call__(self, z, training=False):
        import numpy as np

        z = np.asarray(z)
        ramp = np.linspace(-1, 1, 8)[None, None, :] * np.ones((len(z), 6, 1))
        mask = np.clip(ramp + z[:, :1, None], -1, 1)
        return np.stack([-mask, mask], axis=-1)


def test_viz_figures_render(tmp_path):
    import numpy as np
    import pandas as pd

    from gan_seg_aug.reporting import result_figures
    from gan_seg_aug.reporting import sample_figures
    from gan_seg_aug.reporting import viz
    from gan_seg_aug.config import CITYSCAPES_CATEGORIES

    g = FakeGenerator()
    images, masks = sample_figures.sample_pairs(g, 5, seed=0)
    assert images.shape == (5, 6, 8, 1) and masks.shape == (5, 6, 8)
    fig = sample_figures.pair_grid(images, masks, 2, pairs_per_row=4)
    assert len(fig.axes) == 2 * 8  # 2 rows of 4 pairs, image + mask each
    png = viz.show(fig, save_as=tmp_path / "grid.png")
    assert png[:4] == b"\x89PNG" and (tmp_path / "grid.png").exists()
    viz.show(sample_figures.raw_vs_thresholded(masks[0], 2, image=images[0]))
    viz.show(sample_figures.latent_interpolation(g, 8, steps=4))
    t4 = pd.DataFrame({"row_id": ["a", "b", "c"], "network_id": ["a", "b", "c"], "status": ["ok", "ok", "missing"],
                       "miou8": [0.5, 0.7, None], **{f"iou_{c}": [0.3, 0.6, None] for c in CITYSCAPES_CATEGORIES}})
    fig = result_figures.category_iou_bars(t4, top=4)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["b (0.700)", "a (0.500)"]
    with pytest.raises(ValueError, match="tables.py"):
        result_figures.category_iou_bars(t4.assign(status="missing"))
    truth = np.zeros((6, 8), np.uint8)
    truth[2:4, 2:6] = 1
    rows = [{"image": images[0], "truth": truth, "preds": {"A": truth, "B": 1 - truth}, "caption": "best"}]
    assert len(result_figures.cases_figure(rows, ["A", "B"], 2).axes) == 6


def test_best_worst_figure_needs_finished_runs(tmp_path):
    import pandas as pd

    from gan_seg_aug.reporting import result_figures

    table = tmp_path / "table_II.csv"
    pd.DataFrame({"row_id": ["8-8-NoAug"], "status": ["missing"], "run_dir": [None]}).to_csv(table, index=False)
    with pytest.raises(ValueError, match="no finished run of 8-8-NoAug"):
        result_figures.best_worst_figure(table, "8-8-NoAug", "16-0-Aug", "dice")
