"""Tables I-IV: the configurations, finding finished runs, pooling, the sweep runner.

Unit tests fabricate run directories in tmp_path (test fixtures: their numbers are made up and
never leave tmp_path).  The session fixture ``smoke_sweep`` runs the real experiment commands on
the smoke profile once; test_compare.py and test_notebooks.py reuse it.
"""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gan_seg_aug.reporting import run_catalogue as R
from gan_seg_aug.reporting import table_builder as T
from gan_seg_aug.config import GANConfig, UNetConfig
from gan_seg_aug.layout import fold_dir
from gan_seg_aug.cli.flags import aug_argv
from gan_seg_aug.augment.settings import AUG_PRESETS
from gan_seg_aug.layout import gan_dir_name

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "results" / "paper"


def load_cli(name: str):
    """An ``experiments/<name>.py`` script as a module (they are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"cli_{name}", REPO / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- fabricated runs

def write_run(runs_dir, spec: R.RunSpec, *, profile="cpu", dataset="synthetic", per_image=None, val=None,
              test=None, run_name=None, aug_params=None, resolution=None, extra=None):
    """A fake finished run (summary.json + metrics_per_image.csv) in the layout of the commands."""
    run_dir = fold_dir(runs_dir, spec.task, profile, dataset, spec.fold, spec.train_cases) / (run_name or spec.run_name)
    run_dir.mkdir(parents=True)
    if per_image is not None:
        per_image.to_csv(run_dir / "metrics_per_image.csv", index=False)
    if aug_params is None and spec.aug is not None:
        a = spec.aug
        aug_params = dict(shift_std=a.shift_std, scale_std=a.scale_std, translate_std=a.translate_std,
                          flip=a.flip, elastic_std=a.elastic_std, elastic_mesh=3, elastic_order=3)
    summary = {"task": spec.task, "fold": spec.fold, "network_id": spec.network_id,
               "run_name": run_name or spec.run_name, "n_real": spec.n_real, "n_generated": spec.n_generated,
               "augment": spec.aug is not None, "aug_params": aug_params, "profile": profile, "dataset": dataset,
               "seed": 0, "git_commit": "abc123", "date": "2024-01-01T00:00:00+00:00",
               "gan_iterations": 7 if spec.needs_gan else 0, "unet_iterations": 11, "best_iteration": 9,
               "stopped_by": "early_stopping", "val": val or {}, "test": test or {"n": 3}}
    if resolution:
        summary["resolution"] = resolution
    if spec.train_cases:
        summary["train_cases"] = spec.train_cases
    summary |= extra or {}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


def scr_per_image(dice, hd, prefix="c"):
    return pd.DataFrame({"case_id": [f"{prefix}{i}" for i in range(len(dice))], "dice": dice, "hausdorff_mm": hd,
                         "hd95_mm": hd, "assd_mm": np.asarray(hd) / 2})


# ----------------------------------------------------------------------------- configurations

def test_rows_are_the_papers_rows_in_order():
    for t in R.TABLES:
        paper = pd.read_csv(PAPER / f"table_{t}.csv")
        ours = [r.row_id for r in R.table_rows(t)]
        paper_ids = [r for r in paper["row_id"] if not r.startswith("Neff2017")]
        assert ours == paper_ids, t
    assert [len(r.runs) for r in R.table_rows("II")] == [3] * 6
    assert [len(r.runs) for r in R.table_rows("II", folds=(1,))] == [1] * 6


def test_table_I_elastic_fixed_and_shared_runs():
    rows = R.table_rows("I")
    assert all(r.aug.elastic_std == 10 for r in rows[1:]) and rows[0].runs[0].aug is None
    assert {r.runs[0].mix for r in rows} == {"16-0"} and {r.runs[0].fold for r in rows} == {1}
    # The no-augmentation and the bold row are Table II's fold-1 runs; Table III's no-flip and
    # flip-only rows are Table IV's 8-0 runs: each run once.
    assert rows[0].runs[0] == R.RunSpec("scr_lung", 1, 16, 0, None)
    assert rows[-1].runs[0].run_name == "16-0-Aug" and aug_argv(rows[-1].runs[0].aug, "scr_lung") == ["--aug"]
    iii = R.table_rows("III")
    assert [iii[2].runs[0].run_name, iii[4].runs[0].run_name] == ["8-0-NoAug", "8-0-Aug"]
    assert len(R.table_runs(R.TABLES)) == 9 - 2 + 18 + 5 - 2 + 6


def test_aug_flags_spell_only_the_nonzero_parts():
    spec = R.table_rows("I")[4].runs[0]  # scale 0.05, translation 10, elastic 10
    assert aug_argv(spec.aug, spec.task) == ["--scale-std", "0.05", "--translate-std", "10", "--elastic-std", "10"]
    assert spec.run_name == "16-0-aug_sh0_sc0.05_tr10_el10_flip0"
    city = R.table_rows("III")[3].runs[0]
    assert aug_argv(city.aug, city.task) == ["--shift-std", "0.05", "--scale-std", "0.05", "--flip"]
    assert aug_argv(R.RunSpec("cityscapes", 1, 4, 4).aug, "cityscapes") == []


def test_the_sweeps_flags_give_the_experiment_the_catalogues_run_names():
    """The sweep spells a run as flags; the experiment command parses them back into settings:
    the run directory it names must be the one the tables look for."""
    from gan_seg_aug import layout
    from gan_seg_aug.cli.flags import build_parser, settings_from_args
    from gan_seg_aug.config import parse_mix

    for spec in R.table_runs(R.TABLES, folds=(1,)):
        fold = ["--fold", str(spec.fold)] if spec.task == "scr_lung" else []
        args = build_parser(spec.task).parse_args([*fold, "--mix", spec.mix, *aug_argv(spec.aug, spec.task)])
        s = settings_from_args(spec.task, args)
        assert s.aug == spec.aug and s.mix == spec.mix
        assert layout.unet_run_name(s.task, *parse_mix(s.mix), s.aug) == spec.run_name

def test_bad_table_and_folds_are_rejected():
    with pytest.raises(ValueError, match="--table"):
        R.table_rows("V")
    with pytest.raises(ValueError, match="--folds"):
        R.table_rows("II", folds=(4,))


# ----------------------------------------------------------------------------- collecting runs

def test_table_II_pools_images_over_folds_not_fold_means(tmp_path):
    folds = {1: [0.90, 0.92], 2: [0.94], 3: [0.96, 0.98, 1.00]}
    for f, d in folds.items():
        spec = R.RunSpec("scr_lung", f, 8, 8, None)
        write_run(tmp_path, spec, per_image=scr_per_image(d, [1.0] * len(d), prefix=f"f{f}_"))
    table = T.build_table("II", tmp_path, "cpu", "synthetic")
    row = table.set_index("row_id").loc["8-8-NoAug"]
    values = sum(folds.values(), [])
    assert row["dice_mean"] == pytest.approx(0.95)  # pooled over 6 images; the mean of fold means is 0.9433
    assert np.mean([np.mean(v) for v in folds.values()]) == pytest.approx(0.9433, abs=1e-4)
    assert row["dice_std"] == pytest.approx(np.std(values, ddof=1))
    assert (row["status"], row["n_test"], row["folds"], row["gan_iterations"]) == ("ok", 6, "1;2;3", 7)
    assert row["run_dir"].count(";") == 2
    others = table[table["row_id"] != "8-8-NoAug"]
    assert len(table) == 6 and set(others["status"]) == {"missing"} and others["dice_mean"].isna().all()


def test_table_II_partial_folds_and_infinite_hausdorff(tmp_path):
    spec = R.RunSpec("scr_lung", 2, 16, 0, AUG_PRESETS["scr_lung"])
    write_run(tmp_path, spec, per_image=scr_per_image([0.9, 0.0], [2.0, float("inf")]))
    row = T.build_table("II", tmp_path, "cpu", "synthetic").set_index("row_id").loc["16-0-Aug"]
    assert (row["status"], row["folds"], row["hausdorff_undefined"]) == ("partial", "2", 1)
    assert row["hausdorff_mm_mean"] == float("inf")
    only_fold2 = T.build_table("II", tmp_path, "cpu", "synthetic", folds=(2,)).set_index("row_id")
    assert only_fold2.loc["16-0-Aug", "status"] == "ok"


def test_single_run_tables_read_validation_and_test_values(tmp_path):
    rows_i = R.table_rows("I")
    write_run(tmp_path, rows_i[3].runs[0], val={"dice_mean": 0.91, "dice_std": 0.02, "loss": 0.1})
    t1 = T.build_table("I", tmp_path, "cpu", "synthetic").set_index("row_id")
    assert t1.loc["sh0_sc0.05_tr0_el10", ["val_dice_mean", "status", "elastic_px", "scale_std"]].tolist() == [
        0.91, "ok", 10, 0.05]
    assert (t1["status"] == "missing").sum() == 8
    spec = R.RunSpec("cityscapes", 1, 4, 4, None)
    test = {"n": 500, "miou8": 0.5, "miou8_no_human_object": 0.6, "miou7": 0.55, "miou7_no_human_object": 0.65,
            "iou_per_category": {"sky": 0.8, "human": 0.1}}
    write_run(tmp_path, spec, profile="paper", dataset="real", test=test)
    t4 = T.build_table("IV", tmp_path, "paper", "real").set_index("row_id")
    assert t4.loc["4-4-NoAug", ["miou8", "miou7_no_human_object", "iou_sky", "n_test"]].tolist() == [0.5, 0.65, 0.8,
                                                                                                     500]
    for col in ("profile", "dataset", "gan_iterations", "unet_iterations", "seed", "git_commit", "date", "run_dir"):
        assert col in t4.columns
    assert t4.loc["4-4-NoAug", "gan_iterations"] == 7
    assert T.build_table("IV", tmp_path, "cpu", "real")["status"].eq("missing").all()  # other profile: not mixed


def test_runs_are_matched_by_configuration_even_when_rescaled(tmp_path):
    # The cpu profile trains at half the side and records pixel stds scaled by 0.5, under its own name.
    spec = R.table_rows("I")[2].runs[0]  # translation 10 px, elastic 10 px
    scaled = dict(shift_std=0.0, scale_std=0.0, translate_std=5.0, flip=False, elastic_std=5.0)
    write_run(tmp_path, spec, run_name="16-0-aug_sh0_sc0_tr5_el5_flip0", aug_params=scaled, resolution=[128, 128],
              val={"dice_mean": 0.5})
    t1 = T.build_table("I", tmp_path, "cpu", "synthetic").set_index("row_id")
    assert t1.loc["sh0_sc0_tr10_el10", "status"] == "ok"
    assert t1.loc["sh0_sc0_tr0_el10", "status"] == "missing"  # same elastic, no translation: not this run


def test_rows_are_taken_only_from_runs_of_the_wanted_precision(tmp_path):
    spec = R.table_rows("II")[0].runs[0]
    # a summary written before summaries recorded the precision: the run's config.json says it
    run_dir = write_run(tmp_path, spec, dataset="real", per_image=scr_per_image([0.9, 0.95], [3.0, 2.0]))
    (run_dir / "config.json").write_text(json.dumps({"config": {"precision": "mixed_bfloat16"}}))
    runs = T.finished_runs(tmp_path, spec.task, "cpu", "real")
    assert runs[0].summary["precision"] == "mixed_bfloat16"
    assert T.find_run(spec, runs, {"precision": "mixed_bfloat16"}) is not None
    assert T.find_run(spec, runs, {"precision": "float32"}) is None
    table = T.build_table("II", tmp_path, "cpu", "real", folds=(spec.fold,), want={"precision": "mixed_bfloat16"})
    assert table.set_index("row_id").loc[spec.network_id, "precision"] == "mixed_bfloat16"


def test_a_sweep_extends_published_rows_at_their_precision(tmp_path, monkeypatch, capsys):
    """results/cpu_real was run in bf16 on AVX512-BF16 machines; continued where bf16 is only emulated, `auto`
    must neither start float32 rows beside them (dropping the bf16 rows from table_II.csv) nor silently run
    emulated bf16: it is a one-line error naming the way out, exit 2.  Other profiles are not bound by them."""
    import gan_seg_aug.training.precision as P

    cli = load_cli("tables")
    published = tmp_path / "published"
    spec = R.table_rows("II")[0].runs[0]
    run_dir = write_run(published, spec, dataset="real", per_image=scr_per_image([0.9], [3.0]))
    (run_dir / "config.json").write_text(json.dumps({"config": {"precision": "mixed_bfloat16"}}))

    def resolve(*flags, native=None, profile="cpu"):
        monkeypatch.setattr(P, "native_bfloat16", lambda cpu_flags=None: native)
        argv = ["--profile", profile, "--runs-dir", str(tmp_path / "runs"), "--publish-to", str(published), *flags]
        return cli.run_precision(cli.parse_args(argv))

    def refused(*flags, native=None):
        with pytest.raises(SystemExit) as e:
            resolve(*flags, native=native)
        return e.value.code, capsys.readouterr().err.strip()

    assert resolve("--table", "II", native="CPU flag avx512_bf16") == "mixed_bfloat16"
    assert resolve("--table", "IV", native="CPU flag avx512_bf16") == "mixed_bfloat16"  # the same evidence
    assert resolve("--table", "II", "--precision", "mixed_bfloat16") == "mixed_bfloat16"  # asked for: emulated
    assert resolve("--table", "II", "--collect-only") == "mixed_bfloat16"  # nothing runs: no speed concern
    code, err = refused("--table", "IV")
    assert code == 2 and err == (f"error: --precision auto: --publish-to {published} holds cpu-profile rows in "
                                 "mixed_bfloat16, which this machine only emulates (several times slower than "
                                 "float32); pass --precision mixed_bfloat16 to extend them anyway, or --precision "
                                 "float32 with another --publish-to")
    code, err = refused("--table", "II", "--precision", "float32", native="CPU flag avx512_bf16")
    assert code == 2 and err.startswith("error: --precision float32: ") and "in mixed_bfloat16" in err
    assert resolve("--table", "II", profile="smoke") == "float32"  # no smoke rows published: the machine's choice
    other = write_run(published, R.table_rows("II")[1].runs[0], dataset="real", per_image=scr_per_image([0.9], [3.0]))
    (other / "config.json").write_text(json.dumps({"config": {"precision": "float32"}}))
    code, err = refused("--table", "II", native="CPU flag avx512_bf16")
    assert code == 2 and "of several precisions (float32, mixed_bfloat16); expected one" in err


# ----------------------------------------------------------------------------- the sweep runner

FAKE_GAN = '''import json, sys
from pathlib import Path
a = sys.argv
out = Path(a[a.index("--out") + 1]); out.mkdir(parents=True, exist_ok=True)
print("fake gan", " ".join(a[1:]))
(out / "done.json").write_text("{}")
'''
FAKE_UNET = (f"GAN_NAME = {gan_dir_name(GANConfig.critic_norm)!r}\nGAN_NORM = {GANConfig.critic_norm!r}\n"
             f"SAMPLING_BN = {UNetConfig.sampling_bn!r}\n") + '''import json, sys
from pathlib import Path
a = sys.argv
mix = a[a.index("--mix") + 1]; r, g = map(int, mix.split("-"))
fold = int(a[a.index("--fold") + 1]) if "--fold" in a else 1
task = "scr_lung" if "scr" in Path(a[0]).name else "cityscapes"
fdir = Path(a[a.index("--runs-dir") + 1]) / task / a[a.index("--profile") + 1] / "synthetic" / f"fold{fold}"
if g and not (fdir / GAN_NAME / "done.json").exists():
    print("GAN of this fold not trained"); sys.exit(4)
if (Path(a[0]).parent / "FAIL_0-8").exists() and mix == "0-8":
    print("simulated failure"); sys.exit(3)
aug = "--aug" in a
name = f"{mix}-{'Aug' if aug else 'NoAug'}"
run = fdir / name; run.mkdir(parents=True)
params = {"shift_std": 0, "scale_std": 0, "translate_std": 0, "elastic_std": 0, "flip": aug}
(run / "summary.json").write_text(json.dumps({"task": task, "fold": fold, "run_name": name, "n_real": r,
    "n_generated": g, "augment": aug, "gan_critic_norm": GAN_NORM if g else None,
    "sampling_bn": SAMPLING_BN if g else None, "aug_params": params if aug else None, "profile": "smoke",
    "dataset": "synthetic", "test": {"n": 5, "miou8": 0.25}, "val": {"miou8": 0.3}}))
print("fake unet", name)
'''


def test_sweep_trains_gans_first_reports_failures_and_writes_tables(tmp_path, monkeypatch, capsys):
    cli = load_cli("tables")
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "train_gan.py").write_text(FAKE_GAN)
    (fake / "cityscapes.py").write_text(FAKE_UNET)
    (fake / "FAIL_0-8").write_text("")
    monkeypatch.setattr(cli, "SCRIPTS", {"gan": fake / "train_gan.py", "cityscapes": fake / "cityscapes.py",
                                         "scr_lung": fake / "scr_lung.py"})
    runs, results = tmp_path / "runs", tmp_path / "results"
    argv = ["--table", "IV", "--profile", "smoke", "--runs-dir", str(runs), "--results-dir", str(results), "--jobs", "2"]
    assert cli.main(argv) == 1
    out, err = capsys.readouterr()
    assert "exit 3" in err and "0-8" in err and "0-8-NoAug.log" in err
    fold = runs / "cityscapes" / "smoke" / "synthetic" / "fold1"
    assert "simulated failure" in (fold / "0-8-NoAug.log").read_text()
    assert "fake gan" in (fold / f"{gan_dir_name(GANConfig.critic_norm)}.log").read_text()
    table = pd.read_csv(results / "table_IV.csv").set_index("row_id")
    assert table["status"].to_dict() == {"8-0-Aug": "ok", "8-0-NoAug": "ok", "4-4-Aug": "ok", "4-4-NoAug": "ok",
                                         "0-8-Aug": "missing", "0-8-NoAug": "missing"}
    # Second call: finished runs are not started again; the failing ones are retried.
    assert cli.main(argv) == 1
    out, _ = capsys.readouterr()
    assert "already finished: cityscapes fold 1 GAN" in out and "already finished: cityscapes fold 1 4-4-Aug" in out


def test_sweep_goes_fold_by_fold_and_publishes_as_rows_land(tmp_path, monkeypatch):
    cli = load_cli("tables")
    fake = tmp_path / "fake"
    fake.mkdir()
    record = ("import sys as _s; from pathlib import Path as _P\n"
              "_a = _s.argv; _f = _a[_a.index('--fold') + 1]; _what = _a[_a.index('--mix') + 1] if '--mix' in _a "
              "else 'GAN'\n(_P(_a[0]).parent / 'order.txt').open('a').write(f'{_f} {_what}\\n')\n")
    (fake / "train_gan.py").write_text(record + FAKE_GAN)
    (fake / "scr_lung.py").write_text(record + FAKE_UNET)
    monkeypatch.setattr(cli, "SCRIPTS", {"gan": fake / "train_gan.py", "scr_lung": fake / "scr_lung.py",
                                         "cityscapes": fake / "cityscapes.py"})
    runs, results, published = tmp_path / "runs", tmp_path / "results", tmp_path / "results" / "runs"
    argv = ["--table", "II", "--profile", "smoke", "--runs-dir", str(runs), "--results-dir", str(results),
            "--folds", "1,2", "--only", "16-0-NoAug,8-8-NoAug", "--publish-to", str(published)]
    assert cli.main(argv) == 0
    order = (fake / "order.txt").read_text().split("\n")[:-1]
    assert order == ["1 16-0", "1 GAN", "1 8-8", "2 16-0", "2 GAN", "2 8-8"]  # whole folds, one after another
    copies = sorted(p.relative_to(published).as_posix() for p in published.rglob("summary.json"))
    assert copies == [f"scr_lung/smoke/synthetic/fold{k}/{r}/summary.json" for k in (1, 2)
                      for r in ("16-0-NoAug", "8-8-NoAug")]
    assert (results / "table_II.csv").exists()
    # A fresh machine: no runs directory, only the published copy.  The U-Nets that landed are not rerun;
    # the GANs (published without their generator) are retrained only where a row still needs one.
    (fake / "order.txt").unlink()
    fresh = tmp_path / "fresh_runs"
    argv_fresh = [a if a != str(runs) else str(fresh) for a in argv]
    assert cli.main(argv_fresh[:argv_fresh.index("--only") + 1] + ["16-0-NoAug,8-8-NoAug,8-8-Aug"]
                    + argv_fresh[argv_fresh.index("--only") + 2:]) == 0
    assert (fake / "order.txt").read_text().split("\n")[:-1] == ["1 GAN", "1 8-8", "2 GAN", "2 8-8"]
    assert len(list((fresh / "scr_lung" / "smoke" / "synthetic" / "fold1").glob("*/summary.json"))) == 3


def test_tables_written_with_publish_to_name_the_published_copies(tmp_path):
    """A committed table must point at run directories a checkout has (the published light copies), not at the
    machine-local runs directory the sweep trained in."""
    cli = load_cli("tables")
    runs, results, published = tmp_path / "runs", tmp_path / "results", tmp_path / "results" / "runs"
    spec = R.table_rows("II", folds=(1,))[1].runs[0]  # 16-0-NoAug, fold 1
    write_run(runs, spec, profile="smoke", per_image=scr_per_image([0.9, 0.8], [3.0, 4.0]))
    argv = ["--table", "II", "--profile", "smoke", "--folds", "1", "--runs-dir", str(runs), "--results-dir",
            str(results), "--publish-to", str(published), "--collect-only"]
    assert cli.main(argv) == 0
    row = pd.read_csv(results / "table_II.csv").set_index("row_id").loc[spec.network_id]
    assert row["dice_mean"] == pytest.approx(0.85)
    assert row["run_dir"] == str(published / "scr_lung/smoke/synthetic/fold1/16-0-NoAug")


QUALITY_GAN = FAKE_GAN + '''
(out / "metrics.csv").write_text("iteration,wasserstein\\n20," + ("31.9" if not (Path(a[0]).parent / "OTHER_CURVE").exists() else "32.0"))
if "--no-quality" not in a:
    (out / "quality").mkdir(exist_ok=True)
    (out / "quality" / "gan_quality_bn-moving.json").write_text('{"trained": 1}')
    (out / "quality" / "during_training.csv").write_text("iteration,kid\\n20,0.3\\n")
'''
FAKE_QUALITY = '''import sys
from pathlib import Path
a = sys.argv
q = Path(a[a.index("--gan-dir") + 1]) / "quality"; q.mkdir(exist_ok=True)
(q / ("gan_quality_bn-" + a[a.index("--sampling-bn") + 1] + ".json")).write_text('{"recomputed": 1}')
print("fake quality", " ".join(a[1:]))
'''


def test_a_retrained_gan_takes_the_published_report_only_if_its_curve_is_identical(tmp_path, monkeypatch):
    cli = load_cli("tables")
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "train_gan.py").write_text(QUALITY_GAN)
    (fake / "scr_lung.py").write_text(FAKE_UNET)
    (fake / "gan_quality.py").write_text(FAKE_QUALITY)
    monkeypatch.setattr(cli, "SCRIPTS", {"gan": fake / "train_gan.py", "scr_lung": fake / "scr_lung.py",
                                         "cityscapes": fake / "cityscapes.py", "quality": fake / "gan_quality.py"})
    results, published = tmp_path / "results", tmp_path / "results" / "runs"
    gan_rel = Path("scr_lung/smoke/synthetic/fold1") / gan_dir_name(GANConfig.critic_norm)

    def sweep(runs, only):
        return cli.main(["--table", "II", "--profile", "smoke", "--runs-dir", str(runs), "--results-dir",
                         str(results), "--folds", "1", "--only", only, "--publish-to", str(published)])

    assert sweep(tmp_path / "runs", "16-0-NoAug,8-8-NoAug") == 0
    assert "--no-quality" not in (tmp_path / "runs" / f"{gan_rel}.log").read_text()  # first training: own report
    # fresh machine, same curve: trained without the report (its reference U-Net has no weights there), adopted
    assert sweep(tmp_path / "fresh", "8-8-Aug") == 0
    gan = tmp_path / "fresh" / gan_rel
    assert "--no-quality" in (tmp_path / "fresh" / f"{gan_rel}.log").read_text()
    assert (gan / "quality" / "gan_quality_bn-moving.json").read_text() == '{"trained": 1}'
    assert (gan / "quality" / "during_training.csv").is_file()
    assert "fake quality" not in (tmp_path / "fresh" / f"{gan_rel}.log").read_text()
    # another fresh machine whose retraining differs: the report is computed for this GAN, the stale part unpublished
    (fake / "OTHER_CURVE").write_text("")
    (published / "scr_lung/smoke/synthetic/fold1/8-8-Aug/summary.json").unlink()
    assert sweep(tmp_path / "fresh2", "8-8-Aug") == 0
    gan = tmp_path / "fresh2" / gan_rel
    assert "fake quality" in (tmp_path / "fresh2" / f"{gan_rel}.log").read_text()
    assert (gan / "quality" / "gan_quality_bn-moving.json").read_text() == '{"recomputed": 1}'
    assert sorted(p.name for p in (published / gan_rel / "quality").iterdir()) == ["gan_quality_bn-moving.json"]
    assert (published / gan_rel / "metrics.csv").read_text().endswith("32.0")


def test_print_commands_gan_stage_first(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "experiments" / "tables.py"), "--table", "all", "--profile",
                          "cpu", "--print-commands", "--runs-dir", str(tmp_path)], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    stage2 = out.index(next(line for line in out if line.startswith("# stage 2")))
    gans, unets = out[1:stage2], out[stage2 + 1:]
    assert out[0].startswith("# stage 1") and len(gans) == 4 and all("train_gan.py" in g for g in gans)
    assert len(unets) == 34 and all(u.startswith("python ") and "train_gan" not in u for u in unets)
    assert sum("--fold 2 --mix 8-8 --aug" in u for u in unets) == 1
    assert all("--fold" not in u for u in unets if "cityscapes.py" in u)
    assert not any("--strategy" in line for line in out)


def test_print_commands_pass_the_strategy_to_every_run(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "experiments" / "tables.py"), "--table", "IV", "--profile",
                          "paper", "--print-commands", "--strategy", "mirrored", "--runs-dir", str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    commands = [line for line in out if line.startswith("python ")]
    assert len(commands) == 1 + 6  # the Cityscapes GAN, then Table IV's six U-Nets
    assert all(" --strategy mirrored " in c for c in commands)


def test_the_runs_of_another_seed_get_their_own_logs(tmp_path):
    cli = load_cli("tables")
    logs = {}
    for seed in (0, 1):
        args = cli.parse_args(["--table", "II", "--profile", "smoke", "--folds", "1", "--only", "16-0-NoAug",
                               "--runs-dir", str(tmp_path), "--seed", str(seed)])
        args.precision = "float32"
        gans, unets = cli.plan(args)
        logs[seed] = (unets[0].log.name, unets[0].label)
    assert logs[0] == ("16-0-NoAug.log", "scr_lung fold 1 16-0-NoAug")
    assert logs[1] == ("16-0-NoAug_seed1.log", "scr_lung fold 1 16-0-NoAug_seed1")


def test_no_gan_is_planned_once_every_run_sampling_from_it_is_finished(tmp_path):
    cli = load_cli("tables")
    argv = ["--table", "II", "--profile", "smoke", "--folds", "1", "--only", "8-8-NoAug", "--runs-dir", str(tmp_path)]
    args = cli.parse_args(argv)
    args.precision = "float32"
    gans, unets = cli.plan(args)
    assert [j.is_gan for j in gans] == [True] and not unets[0].finished  # the 8-8 run still needs its GAN
    spec = next(s for r in R.select_rows(R.table_rows("II", [1]), ["8-8-NoAug"]) for s in r.runs)
    write_run(tmp_path, spec, profile="smoke",
              extra={"gan_critic_norm": args.critic_norm, "sampling_bn": args.sampling_bn})
    gans, unets = cli.plan(args)
    assert unets[0].finished and gans == []


def test_cli_rejects_bad_arguments(tmp_path):
    cli = load_cli("tables")
    with pytest.raises(SystemExit, match="--folds"):
        cli.parse_args(["--table", "II", "--folds", "1,5"])
    with pytest.raises(SystemExit, match="--data-dir-scr"):
        cli.parse_args(["--table", "I", "--data-dir-scr", str(tmp_path / "absent")])
    with pytest.raises(SystemExit, match="--jobs"):
        cli.parse_args(["--table", "I", "--jobs", "0"])


# ----------------------------------------------------------------------------- the real smoke sweep

@pytest.mark.slow
def test_smoke_sweep_writes_all_four_tables(smoke_sweep):
    results = smoke_sweep["results"]
    # the GAN stage also trains each fold's real-pairs-only reference U-Net (16-0-NoAug / 8-0-NoAug) for the
    # GAN quality report, and those are rows too
    expect_ok = {"I": {"sh0.05_sc0.05_tr10_el10", "sh0_sc0_tr0_el0"}, "II": {"8-8-NoAug", "16-0-Aug", "16-0-NoAug"},
                 "III": {"sh0_sc0_tr0_flip1", "sh0_sc0_tr0_flip0"}, "IV": {"4-4-NoAug", "8-0-Aug", "8-0-NoAug"}}
    for t, ok in expect_ok.items():
        table = pd.read_csv(results / f"table_{t}.csv")
        landed = "partial" if t == "II" else "ok"  # the sweep ran fold 1 of Table II's three
        assert set(table.loc[table["status"] == landed, "row_id"]) == ok, t
        assert set(table.loc[table["status"] == "ok", "row_id"]) == (set() if t == "II" else ok), t
        done = table[table["status"] == landed]
        assert (done["profile"] == "smoke").all() and (done["dataset"] == "synthetic").all()
        assert done["unet_iterations"].notna().all() and done["git_commit"].notna().all()
        for run_dir in done["run_dir"]:
            for d in str(run_dir).split(";"):
                assert (T.resolve_run_dir(d) / "summary.json").exists()
    t2 = pd.read_csv(results / "table_II.csv").set_index("row_id")
    assert 0.0 <= t2.loc["8-8-NoAug", "dice_mean"] <= 1.0 and t2.loc["8-8-NoAug", "gan_iterations"] > 0
    fold1 = smoke_sweep["runs"] / "scr_lung" / "smoke" / "synthetic" / "fold1"
    assert (fold1 / f"{gan_dir_name(GANConfig.critic_norm)}.log").exists() and (fold1 / "8-8-NoAug.log").exists()
    assert t2.loc["8-8-NoAug", "critic_norm"] == GANConfig.critic_norm and t2.loc["8-8-NoAug", "gan_health"]
    assert 0.0 <= t2.loc["8-8-NoAug", "gan_pair_consistency"] <= 1.0  # the quality of the generator it sampled


def test_ladder_rows_have_their_own_runs_and_never_stand_in_for_the_full_set(tmp_path):
    rows = R.table_rows("ladder")
    assert [r.row_id for r in rows[:3]] == ["16-0-NoAug_train9", "16-0-Aug_train9", "8-8-NoAug_train9"]
    assert [r.runs[0].train_cases for r in rows[::3]] == [9, 25, 62, None]
    sub = rows[0].runs[0]
    write_run(tmp_path, sub, per_image=scr_per_image([0.8, 0.9], [5.0, 6.0]))
    full = R.RunSpec("scr_lung", 1, 16, 0)
    runs = T.finished_runs(tmp_path, "scr_lung", "cpu", "synthetic")
    assert T.find_run(sub, runs) is not None and T.find_run(full, runs) is None  # a subset is not Table II's run
    ladder = T.build_table("ladder", tmp_path, "cpu", "synthetic")
    first = ladder.iloc[0]
    assert first["status"] == "ok" and first["train_cases"] == 9 and first["dice_mean"] == pytest.approx(0.85)
    assert (ladder["status"] == "missing").sum() == len(rows) - 1
    table_ii = T.build_table("II", tmp_path, "cpu", "synthetic", folds=(1,))
    assert (table_ii["status"] == "missing").all()


def test_ladder_plot_places_the_full_training_set_at_its_recorded_size(tmp_path):
    from gan_seg_aug.reporting.result_figures import ladder_plot, ladder_points

    rows = R.table_rows("ladder")
    for row, dice in ((rows[0], [0.80, 0.90]), (rows[9], [0.95, 0.97])):  # 16-0-NoAug at 9 and at all cases
        run_dir = write_run(tmp_path, row.runs[0], per_image=scr_per_image(dice, [5.0, 6.0]))
        summary = json.loads((run_dir / "summary.json").read_text())
        (run_dir / "summary.json").write_text(json.dumps(summary | {"n_train": row.runs[0].train_cases or 134}))
    ladder = T.build_table("ladder", tmp_path, "cpu", "synthetic")
    pts = ladder_points(ladder)
    assert pts["cases"].tolist() == [9, 134] and pts["network_id"].unique().tolist() == ["16-0-NoAug"]
    assert (pts["ci_low"] < pts["dice_mean"]).all() and (pts["dice_mean"] < pts["ci_high"]).all()
    line = ladder_plot(ladder).axes[0].lines[0]
    assert line.get_xdata().tolist() == [9, 134]
    with pytest.raises(ValueError, match="no finished ladder rows"):
        ladder_points(ladder.assign(status="missing"))


def test_runs_of_an_earlier_stopping_rule_do_not_stand_in_for_the_current_profile(tmp_path):
    spec = R.table_rows("II")[0].runs[0]
    run_dir = write_run(tmp_path, spec, dataset="real", per_image=scr_per_image([0.9, 0.95], [3.0, 2.0]))
    rule = {"min_iterations": 600, "patience": 400, "val_every": 50, "max_iterations": 8000}
    (run_dir / "config.json").write_text(json.dumps({"config": rule}))
    runs = T.finished_runs(tmp_path, spec.task, "cpu", "real")
    assert runs[0].summary["stopping_rule"] == "600/400/50/8000"
    assert T.find_run(spec, runs, {"stopping_rule": "600/600/50/8000"}) is None
    assert T.find_run(spec, runs, {"stopping_rule": "600/400/50/8000"}) is not None
    assert T.find_run(spec, runs, {}) is not None  # not asked: not checked


@pytest.mark.parametrize("stopped_by, iterations, stands", [("early_stopping", 4350, True),
                                                            ("max_iterations", 8000, False)])
def test_a_run_stands_under_a_raised_cap_only_if_the_thesis_rule_ended_it(tmp_path, stopped_by, iterations, stands):
    spec = R.table_rows("II")[0].runs[0]
    run_dir = write_run(tmp_path, spec, dataset="real", per_image=scr_per_image([0.9, 0.95], [3.0, 2.0]))
    summary = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").write_text(json.dumps(summary | {"stopped_by": stopped_by,
                                                                "unet_iterations": iterations}))
    rule = {"min_iterations": 600, "patience": 600, "val_every": 50, "max_iterations": 8000}
    (run_dir / "config.json").write_text(json.dumps({"config": rule}))
    runs = T.finished_runs(tmp_path, spec.task, "cpu", "real")
    assert T.find_run(spec, runs, {"stopping_rule": "600/600/50/8000"}) is not None
    assert (T.find_run(spec, runs, {"stopping_rule": "600/600/50/30000"}) is not None) == stands
    assert T.find_run(spec, runs, {"stopping_rule": "600/400/50/30000"}) is None  # other patience: never


def test_cpu_real_sweep_script_refuses_a_data_root_without_the_datasets(tmp_path):
    """The script behind results/cpu_real/README's one command: a wrong DATA_ROOT is a one-line error, exit 2."""
    script = REPO / "experiments" / "cpu_real_sweep.sh"
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0  # parses
    r = subprocess.run(["sh", str(script), str(tmp_path), str(tmp_path / "runs")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip() == (
        f"error: {tmp_path}/jsrt_scr: not a directory (expected get_real_data.sh's TARGET_DIR as DATA_ROOT)")
    r = subprocess.run(["sh", str(script)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("usage:")
