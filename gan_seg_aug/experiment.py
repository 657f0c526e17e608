"""One experiment = one row of the paper's Tables I-IV: (GAN for the fold) -> U-Net on a mix -> evaluation.

Thesis §4.2 / Fig. 4.2: "we split the data into one or multiple training, validation, and test sets.
Then, we train GANs for every training set [...] Finally, we take the fully-trained generator network,
and use it directly as an input to a U-Net style segmentation network."  Paper §III: "When mixing real
and generated data, we exclusively use the specific GAN that was trained on the same real training
data set".  So every fold has one GAN directory shared by all U-Net runs of that fold.

Each stage is idempotent and resumable: a finished GAN (``done.json``) or U-Net (``summary.json``) is
reused; an interrupted one continues from its checkpoints.  ``summary.json`` is written last and
atomically, so its presence means the run is complete.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from gan_seg_aug import config as C
from gan_seg_aug.artifacts import atomic_write_csv, atomic_write_json, provenance, read_json

from gan_seg_aug.layout import REPO_ROOT, fold_dir  # noqa: F401  (re-exported for the commands)
from gan_seg_aug.cli.flags import aug_from_args, build_parser, strategy_from_args  # noqa: F401  (the commands' flags)
from gan_seg_aug.cli.log_setup import configure, verbosity

log = logging.getLogger(__name__)


def gpu_available() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def choose_profile(requested: str | None) -> str:
    """``paper`` when a GPU is visible, otherwise ``cpu`` -- and say why (issue 5, item 4)."""
    if requested:
        C.get_profile(requested)
        if requested == "paper" and not gpu_available():
            log.info("note: --profile paper without a GPU: the thesis schedule takes days on this CPU "
                     "(15-25 s per full-size SCR GAN iteration, 5-13 s per U-Net step).")
        return requested
    if gpu_available():
        return "paper"
    log.info("no GPU visible: using --profile cpu (the paper's schedule would take days here; "
             "pass --profile paper to run it anyway). " + C.get_profile("cpu").note)
    return "cpu"


def run_name(cfg: C.UNetConfig, aug, task: str) -> str:
    """``8-8-NoAug`` / ``16-0-Aug`` for the paper's settings, a spelled-out name for any other."""
    from gan_seg_aug.augment.ops import AUG_PRESETS

    if aug is None or aug == AUG_PRESETS[task]:
        return cfg.network_id
    parts = [f"sh{aug.shift_std:g}", f"sc{aug.scale_std:g}", f"tr{aug.translate_std:g}", f"el{aug.elastic_std:g}",
             f"flip{int(aug.flip)}"]
    return f"{cfg.n_real}-{cfg.n_generated}-aug_" + "_".join(parts)


def one_line(summary: dict, run_dir) -> str:
    s, t = summary, summary["test"]
    head = f"{s['task']} fold {s['fold']} {s['run_name']} [{s['profile']}, {s['dataset']}]"
    if s["task"] == "scr_lung":
        body = (f"test Dice {t['dice_mean']:.4f} ± {t['dice_std']:.4f}, HD {t['hausdorff_mm_mean']:.2f} ± "
                f"{t['hausdorff_mm_std']:.2f} mm (n={t['n']}); val Dice {s['val']['dice_mean']:.4f}")
    else:
        body = (f"test mIoU {t['miou8']:.4f} (no human/object {t['miou8_no_human_object']:.4f}, official 7-cat "
                f"{t['miou7']:.4f}, n={t['n']}); val mIoU {s['val']['miou8']:.4f}")
    return f"{head}: {body} -> {run_dir}"


def run(task: str, args, strategy=None) -> dict:
    from gan_seg_aug.training import distribute
    from gan_seg_aug.artifacts import git_commit
    from gan_seg_aug.data.loaders import load_task, task_split
    from gan_seg_aug.data.splits import fold_of

    commit_at_start = git_commit()  # the code that trained; the summary is written much later
    profile = choose_profile(args.profile)
    prof = C.get_profile(profile)
    n_real, n_gen = C.parse_mix(args.mix, task)
    aug = aug_from_args(task, args)
    fold_no = getattr(args, "fold", 1)
    cfg = C.unet_config(task, profile, args.mix, augment=aug is not None, seed=args.seed, precision=args.precision,
                        jit_compile=bool(getattr(args, "jit_compile_unet", False)),
                        sampling_bn=getattr(args, "sampling_bn", C.UNetConfig.sampling_bn))
    name = run_name(cfg, aug, task)  # named from the paper-resolution setting, before rescaling
    if n_gen > 0:
        name += f"_critic-{args.critic_norm}_bn-{cfg.sampling_bn}"
    if args.seed:
        name += f"_seed{args.seed}"
    if aug is not None:
        aug = aug.scaled(cfg.height / C.task_spec(task).height)  # pixel stds are given at paper resolution

    data = load_task(task, args.data_dir, allow_partial=args.allow_partial, cache_dir=args.cache_dir,
                     max_cases=prof.max_cases)
    split, split_path = task_split(data)
    fold = fold_of(split, fold_no)
    fdir = fold_dir(args.runs_dir, task, profile, data.source, fold_no)
    run_dir = Path(args.out) if args.out else fdir / name
    summary_path = run_dir / "summary.json"
    if summary_path.exists():
        summary = read_json(summary_path)
        log.info("already finished (delete the directory to run again): " + one_line(summary, run_dir))
        return summary

    log.info(f"{task} fold {fold_no} {name}: profile {profile} ({cfg.height}x{cfg.width}, U-Net width/"
             f"{cfg.unet_width_div}), dataset {data.source} ({len(data)} cases; split {split_path.name}: "
             f"{len(fold['train'])} train / {len(fold['val'])} val / {len(fold['test'])} test)")

    sampler, gan_iterations, gan_dir = None, 0, None
    if n_gen > 0:
        sampler, gan_iterations, gan_dir = _generator_for(task, profile, args, data, fold, fdir, cfg, strategy)

    from gan_seg_aug.training.unet_trainer import train_unet

    t0 = time.time()
    train_summary = train_unet(cfg, data, fold, run_dir, sampler=sampler, aug=aug, strategy=strategy)
    if strategy is not None and not distribute.is_chief(strategy):
        log.info("worker done: the chief evaluates and writes the summary")
        return train_summary
    summary = _evaluate_and_summarise(task, cfg, data, fold, run_dir, aug, name, fold_no, train_summary,
                                      gan_iterations, gan_dir)
    if summary["git_commit"] != commit_at_start:
        summary["git_commit_at_finish"] = summary["git_commit"]
        summary["git_commit"] = commit_at_start
    summary["data_dir"] = str(Path(args.data_dir).resolve()) if args.data_dir else None
    summary["allow_partial"] = bool(args.allow_partial)
    summary["split_file"] = split_path.name
    summary["wall_seconds_unet_and_eval"] = round(time.time() - t0, 1)
    summary["execution"] = {**distribute.describe(strategy),
                            "jit_compile_unet": cfg.jit_compile}
    atomic_write_json(summary_path, summary)
    log.info(one_line(summary, run_dir))
    return summary


def _generator_for(task, profile, args, data, fold, fdir, cfg, strategy=None):
    from gan_seg_aug.training.gan_trainer import load_generator, train_gan
    from gan_seg_aug.layout import gan_dir_name
    from gan_seg_aug.training.minibatches import GeneratorSampler

    if args.gan_checkpoint:
        gan_dir = Path(args.gan_checkpoint)
        if not (gan_dir / "done.json").exists():
            raise SystemExit(f"error: --gan-checkpoint {gan_dir}: not a finished GAN run (no done.json); "
                             f"train it with experiments/train_gan.py or omit the flag")
    else:
        norm = getattr(args, "critic_norm", C.GANConfig.critic_norm)
        gcfg = C.gan_config(task, profile, seed=args.seed, precision=args.precision, critic_norm=norm,
                            jit_compile=bool(getattr(args, "jit_compile_gan", False)))
        gan_dir = fdir / gan_dir_name(norm, args.seed, args.precision)  # one GAN per fold and GAN setting
        context = {"data_dir": str(Path(args.data_dir).resolve()) if args.data_dir else None,
                   "fold": getattr(args, "fold", 1)}
        reporter = None
        if getattr(args, "quality", False) and strategy_is_local(strategy):
            from gan_seg_aug.reporting.gan_report import Reporter

            reference = ensure_reference_unet(task, args, fdir)
            reporter = Reporter(gan_dir, {**C.to_dict(gcfg), "dataset": data.source}, data, fold,
                                reference_dir=reference)
        train_gan(gcfg, data, fold["train"], gan_dir, resume=True, strategy=strategy, reporter=reporter,
                  context=context)
        if reporter is not None:
            final_quality_report(reporter, gan_dir, cfg.sampling_bn)
    gan_cfg = read_json(Path(gan_dir) / "config.json")
    gh, gw = gan_cfg.get("height"), gan_cfg.get("width")
    if (gh, gw) != (cfg.height, cfg.width):
        raise SystemExit(f"error: --gan-checkpoint {gan_dir} generates {gh}x{gw} pairs but this U-Net trains at "
                         f"{cfg.height}x{cfg.width} (profile {profile}); use a GAN of the same profile")
    generator = load_generator(gan_dir)
    batch_stats = cfg.sampling_bn == "batch"
    # batch statistics over the generated part of each minibatch: one generator call per minibatch
    sampler = GeneratorSampler(generator, gan_cfg.get("latent_dim", 128), C.task_spec(task).n_classes, seed=args.seed,
                               training=batch_stats, chunk=cfg.n_generated if batch_stats else 32)
    return sampler, int(gan_cfg.get("iterations", 0)), str(gan_dir)


def strategy_is_local(strategy) -> bool:
    """The quality report runs where the chief writes; skipped on other workers."""
    from gan_seg_aug.training import distribute

    return strategy is None or distribute.is_chief(strategy)


def ensure_reference_unet(task: str, args, fdir: Path) -> Path:
    """The fold's real-pairs-only U-Net (``16-0-NoAug`` / ``8-0-NoAug``), trained now if missing: the
    quality report's reference network (gan_quality.py)."""
    from gan_seg_aug.evaluation.gan_quality import reference_run_name

    out = fdir / reference_run_name(task)
    if not (out / "summary.json").exists():
        log.info(f"training the reference U-Net {out} for the GAN quality report (real pairs only)")
        ref = argparse.Namespace(**{**vars(args), "mix": f"{C.task_spec(task).unet_batch}-0", "aug": False,
                                    "shift_std": None, "scale_std": None, "translate_std": None, "elastic_std": None,
                                    "flip": False, "seed": 0, "out": str(out), "gan_checkpoint": None})
        run(task, ref)
    return out


def final_quality_report(reporter, gan_dir, sampling_bn: str) -> dict:
    """The full report of a finished GAN (once; reused when it exists)."""
    from gan_seg_aug.evaluation.gan_quality import QualitySettings
    from gan_seg_aug.reporting.gan_report import read_report
    from gan_seg_aug.training.gan_trainer import load_generator

    rep = read_report(gan_dir, sampling_bn)
    if rep is None:
        log.info(f"[quality] report on {gan_dir} (sampling BN {sampling_bn}) ...")
        rep = reporter.final(load_generator(gan_dir), QualitySettings(sampling_bn=sampling_bn),
                             read_json(Path(gan_dir) / "done.json")["iterations"])
    log.info("[quality] " + ", ".join(f"{k} {v:.4g}" for k, v in rep["summary"].items()))
    return rep


def _evaluate_and_summarise(task, cfg, data, fold, run_dir, aug, name, fold_no, train_summary, gan_iterations,
                            gan_dir):
    import dataclasses

    from gan_seg_aug.evaluation import segmentation as E
    from gan_seg_aug.reporting.gan_report import report_columns
    from gan_seg_aug.nets.networks import build_unet

    model = build_unet(task, height=cfg.height, width=cfg.width, width_div=cfg.unet_width_div)
    model.load_weights(str(run_dir / "best.weights.h5"))
    small = data.resized(cfg.height, cfg.width)
    results = {}
    for subset in ("val", "test"):
        log.info(f"evaluating on the {subset} set ({len(fold[subset])} cases) at native resolution ...")
        if task == "scr_lung":
            df = E.evaluate_scr(model, small, fold[subset])
            results[subset] = (E.summarise_scr(df), df)
        else:
            report, df = E.evaluate_cityscapes(model, small, fold[subset])
            results[subset] = (report, df)
    atomic_write_csv(run_dir / "metrics_per_image.csv", results["test"][1])
    atomic_write_csv(run_dir / "metrics_val_per_image.csv", results["val"][1])
    val, test = results["val"][0], results["test"][0]
    val = {"loss": train_summary.get("best_val_loss"), **{k: v for k, v in val.items() if k != "n"}}
    return {
        "task": task, "fold": fold_no, "network_id": cfg.network_id, "run_name": name,
        "n_real": cfg.n_real, "n_generated": cfg.n_generated, "augment": aug is not None,
        "aug_params": dataclasses.asdict(aug) if aug is not None else None,
        **provenance(profile=cfg.profile, dataset=data.source, seed=cfg.seed),
        "gan_iterations": gan_iterations, "gan_dir": gan_dir,
        "gan_critic_norm": read_json(Path(gan_dir) / "config.json").get("critic_norm") if gan_dir else None,
        "sampling_bn": cfg.sampling_bn if gan_dir else None,
        "gan_health": (read_json(Path(gan_dir) / "done.json").get("health") or {}).get("status") if gan_dir else None,
        "gan_quality": report_columns(gan_dir, cfg.sampling_bn) if gan_dir else {},
        "unet_iterations": train_summary.get("iterations"), "best_iteration": train_summary.get("best_iteration"),
        "stopped_by": train_summary.get("stopped_by"),
        "resolution": [cfg.height, cfg.width], "unet_width_div": cfg.unet_width_div,
        "val": val, "test": {"n": len(fold["test"]), **{k: v for k, v in test.items() if k != "n"}},
    }


def main(task: str, argv=None) -> int:
    args = build_parser(task).parse_args(argv)
    configure(verbosity(args))
    strategy = strategy_from_args(args)  # first: MultiWorkerMirroredStrategy must precede other TF work
    try:
        run(task, args, strategy=strategy)
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
