"""One experiment = one row of the paper's Tables I-IV: (GAN for the fold) -> U-Net on a mix -> evaluation.

Thesis §4.2 / Fig. 4.2: "we split the data into one or multiple training, validation, and test sets.
Then, we train GANs for every training set [...] Finally, we take the fully-trained generator network,
and use it directly as an input to a U-Net style segmentation network."  Paper §III: "When mixing real
and generated data, we exclusively use the specific GAN that was trained on the same real training
data set".  So every fold has one GAN directory shared by all U-Net runs of that fold.

The library takes a :class:`RunSettings`; the command line that builds one lives in
:mod:`gan_seg_aug.cli.flags`.  Each stage is idempotent and resumable: a finished GAN (``done.json``)
or U-Net (``summary.json``) is reused; an interrupted one continues from its checkpoints; a directory
that holds a run with other settings is refused (:mod:`gan_seg_aug.training.run_guard`).
"""
from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from gan_seg_aug import config as C
from gan_seg_aug import layout
from gan_seg_aug.artifacts import atomic_write_json, read_json
from gan_seg_aug.augment.settings import AugParams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSettings:
    """Everything one experiment run depends on.  Defaults are the paper's (thesis §4.2, §5.1.2).

    ``task``: "scr_lung" | "cityscapes", or the TaskSpec of the user's own folder (``data.folder.describe``),
    whose images are in ``data_dir`` and masks in ``masks_dir``.
    """

    task: object
    fold: int = 1
    mix: str | None = None  # "R-G"; None = the task's paper default (8-8 / 4-4)
    aug: AugParams | None = None  # at the paper's resolution; None = no standard augmentation
    profile: str | None = None  # None = paper with a GPU, else cpu
    seed: int = 0
    precision: str | None = None  # None / "auto" = the profile's (training/precision.py: choose_precision)
    critic_norm: str = C.GANConfig.critic_norm
    sampling_bn: str = C.UNetConfig.sampling_bn
    quality: bool = True  # GAN quality report (needs the fold's real-pairs-only reference U-Net)
    data_dir: str | None = None  # None = the embedded synthetic dataset; own data: the images folder
    masks_dir: str | None = None  # own data only: the masks folder
    allow_partial: bool = False
    cache_dir: str | None = None
    runs_dir: str = str(layout.default_runs_dir())
    out: str | None = None  # this U-Net run's directory; None = derived from the settings
    gan_checkpoint: str | None = None  # a finished GAN run to sample from instead of the fold's own
    gan_iterations: int | None = None  # None = the profile's
    gan_width_div: int | None = None  # None = the profile's (the cpu Cityscapes alternative /8: decisions.md)
    train_cases: int | None = None  # a nested subset of the fold's training cases (low-data ladder); None = all
    jit_compile_unet: bool = False
    jit_compile_gan: bool = False

    def __post_init__(self):
        object.__setattr__(self, "task", C.normalise_task(self.task))
        if self.mix is None:
            object.__setattr__(self, "mix", C.task_spec(self.task).default_mix)
        C.parse_mix(self.mix, self.task)

    @property
    def data_context(self) -> dict:
        """Where the data came from, recorded with every GAN (the quality command reads it back)."""
        where = {"data_dir": str(Path(self.data_dir).resolve()) if self.data_dir else None, "fold": self.fold}
        if self.masks_dir:  # own data only, so the paper tasks' records stay as they were
            where["masks_dir"] = str(Path(self.masks_dir).resolve())
        return where


def gpu_available() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def choose_profile(requested: str | None) -> str:
    """``paper`` when a GPU is visible, otherwise ``cpu`` -- and say why."""
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


def resolved_precision(s: RunSettings, profile: str) -> RunSettings:
    """The settings with ``precision`` resolved for this machine (``auto`` / None -> a concrete name)."""
    from gan_seg_aug.training.precision import choose_precision

    precision = choose_precision(s.precision, profile)
    if precision != s.precision:
        log.info(f"precision {precision} (the {profile} profile's choice on this machine; --precision to override)")
    return dataclasses.replace(s, precision=precision)


def load_fold(s: RunSettings, profile: str):
    """(data, fold dict, split file) of the settings' task and fold."""
    from gan_seg_aug.data.loaders import load_task, task_split
    from gan_seg_aug.data.splits import fold_of

    data = load_task(s.task, s.data_dir, masks_dir=s.masks_dir, allow_partial=s.allow_partial,
                     cache_dir=s.cache_dir, max_cases=C.get_profile(profile).max_cases)
    split, split_path = task_split(data, scratch_dir=Path(s.runs_dir) / "splits")
    fold = fold_of(split, s.fold)
    if s.train_cases:
        from gan_seg_aug.data.splits import training_subset

        subset, subset_path = training_subset(split, split_path, s.fold, s.train_cases)
        log.info(f"training on {len(subset)} of the fold's {len(fold['train'])} training cases ({subset_path.name}); "
                 f"validation and test sets unchanged")
        fold = {**fold, "train": subset}
    return data, fold, split_path


def run(s: RunSettings, strategy=None) -> dict:
    """Train (or reuse) the fold's GAN, train the U-Net on the mix, evaluate; returns the summary."""
    from gan_seg_aug.artifacts import git_commit
    from gan_seg_aug.evaluation.run_summary import evaluate_and_summarise, one_line
    from gan_seg_aug.training import distribute
    from gan_seg_aug.training.early_stopping import cap_leaves_run_unchanged
    from gan_seg_aug.training.run_guard import refuse_other_run
    from gan_seg_aug.training.unet_trainer import train_unet

    commit_at_start = git_commit()  # the code that trained; the summary is written much later
    profile = choose_profile(s.profile)
    s = resolved_precision(s, profile)
    n_real, n_gen = C.parse_mix(s.mix, s.task)
    cfg = C.unet_config(s.task, profile, s.mix, augment=s.aug is not None, seed=s.seed, precision=s.precision,
                        jit_compile=s.jit_compile_unet, sampling_bn=s.sampling_bn)
    # named from the paper-resolution setting, before rescaling
    name = layout.unet_run_name(s.task, n_real, n_gen, s.aug, critic_norm=s.critic_norm,
                                sampling_bn=cfg.sampling_bn, seed=s.seed)
    # --aug / --*-std pixels are at the paper resolution of the task's family (256² / 128x256, own data too)
    aug = s.aug.scaled(cfg.height / C.family_spec(s.task).height) if s.aug is not None else None

    data, fold, split_path = load_fold(s, profile)
    fdir = layout.fold_dir(s.runs_dir, s.task, profile, data.source, s.fold, s.train_cases)
    run_dir = Path(s.out) if s.out else fdir / name
    summary_path = run_dir / layout.UNET_DONE
    if summary_path.exists():
        summary = read_json(summary_path)
        refuse_other_run(run_dir, summary, {"seed": s.seed, "n_real": n_real, "n_generated": n_gen,
                                            "augment": s.aug is not None, "precision": s.precision}, what="U-Net",
                         legacy={"precision": layout.recorded_precision(run_dir)})
        old_cap = layout.recorded_config(run_dir).get("max_iterations", cfg.max_iterations)
        if not cap_leaves_run_unchanged(old_cap, cfg.max_iterations, iterations=summary.get("unet_iterations") or 0,
                                        stopped_by=summary.get("stopped_by")):
            raise ValueError(f"{run_dir} ended at its cap of {old_cap} iterations; the profile's cap is now "
                             f"{cfg.max_iterations}, so the thesis rule would have trained it on: move that directory "
                             f"away to train it again")
        log.info("already finished (delete the directory to run again): " + one_line(summary, run_dir))
        return summary

    log.info(f"{s.task} fold {s.fold} {name}: profile {profile} ({cfg.height}x{cfg.width}, U-Net width/"
             f"{cfg.unet_width_div}), dataset {data.source} ({len(data)} cases; split {split_path.name}: "
             f"{len(fold['train'])} train / {len(fold['val'])} val / {len(fold['test'])} test)")

    sampler, gan_iterations, gan_dir = None, 0, None
    if n_gen > 0:
        sampler, gan_iterations, gan_dir = _generator_for(s, profile, data, fold, fdir, cfg, strategy)

    t0 = time.time()
    train_summary = train_unet(cfg, data, fold, run_dir, sampler=sampler, aug=aug, strategy=strategy)
    if strategy is not None and not distribute.is_chief(strategy):
        log.info("worker done: the chief evaluates and writes the summary")
        return train_summary
    summary = evaluate_and_summarise(cfg, data, fold, run_dir, aug, name, s.fold, train_summary,
                                     gan_iterations, gan_dir)
    if summary["git_commit"] != commit_at_start:
        summary["git_commit_at_finish"] = summary["git_commit"]
        summary["git_commit"] = commit_at_start
    summary["data_dir"] = s.data_context["data_dir"]
    if s.masks_dir:
        summary["masks_dir"] = s.data_context["masks_dir"]
    summary["allow_partial"] = bool(s.allow_partial)
    summary["split_file"] = split_path.name
    summary["train_cases"] = s.train_cases  # None: the whole training set
    summary["n_train"] = len(fold["train"])  # what it trained on, so the ladder can place "all" on its axis
    summary["wall_seconds_unet_and_eval"] = round(time.time() - t0, 1)
    summary["execution"] = {**distribute.describe(strategy), "jit_compile_unet": cfg.jit_compile}
    atomic_write_json(summary_path, summary)
    log.info(one_line(summary, run_dir))
    return summary


def train_fold_gan(s: RunSettings, profile: str, data, fold, *, out=None, resume: bool = True,
                   strategy=None) -> Path:
    """Train (or reuse, or resume) the fold's GAN of these settings, with its quality report."""
    from gan_seg_aug.reporting.gan_report import read_report
    from gan_seg_aug.training.gan_trainer import train_gan

    s = resolved_precision(s, profile)
    overrides = {k: v for k, v in (("iterations", s.gan_iterations), ("gan_width_div", s.gan_width_div)) if v}
    gcfg = C.gan_config(s.task, profile, seed=s.seed, precision=s.precision, critic_norm=s.critic_norm,
                        jit_compile=s.jit_compile_gan, **overrides)
    out = Path(out) if out else layout.gan_dir(s.runs_dir, s.task, profile, data.source, s.fold, gcfg.critic_norm,
                                               gcfg.seed, gcfg.precision, s.train_cases)
    reporter = None
    quality = s.quality and strategy_is_local(strategy) and _enough_for_quality(fold)
    if quality and not (layout.is_finished_gan(out) and read_report(out, s.sampling_bn) is not None):
        # only a report still to be written needs the reference network: for a finished GAN whose report exists
        # (e.g. adopted on a fresh machine) retraining a restored reference would cost up to an hour for nothing
        from gan_seg_aug.reporting.gan_report import Reporter

        reference = ensure_reference_unet(s, profile, out.parent)
        # "task" as the library passes it (a name, or own data's TaskSpec), not its JSON record
        reporter = Reporter(out, {**C.to_dict(gcfg), "task": gcfg.task, "dataset": data.source}, data, fold,
                            reference_dir=reference)
    train_gan(gcfg, data, fold["train"], out, resume=resume, strategy=strategy, reporter=reporter,
              context=s.data_context)
    if quality:
        final_quality_report(reporter, out, s.sampling_bn)
    return out


def _enough_for_quality(fold) -> bool:
    """The report's precision / recall of real validation pairs needs k + 1 of them (a small own-data folder
    may have fewer: ~12 % of its cases are validation cases, paper §V-A); without, the run goes on unreported."""
    from gan_seg_aug.evaluation.gan_quality import QualitySettings

    if len(fold["val"]) > QualitySettings.k:
        return True
    log.warning(f"[quality] no GAN quality report: the fold has {len(fold['val'])} validation cases, the report "
                f"needs at least {QualitySettings.k + 1} (give the folder 29 or more image+mask pairs)")
    return False


def _generator_for(s: RunSettings, profile, data, fold, fdir, cfg, strategy=None):
    from gan_seg_aug.training.gan_trainer import load_generator
    from gan_seg_aug.training.minibatches import GeneratorSampler

    if s.gan_checkpoint:
        gan_dir = Path(s.gan_checkpoint)
        if not layout.is_finished_gan(gan_dir):
            raise ValueError(f"--gan-checkpoint {gan_dir}: not a finished GAN run (no {layout.GAN_DONE}); "
                             f"train it with experiments/train_gan.py or omit the flag")
    else:
        gan_dir = train_fold_gan(s, profile, data, fold, strategy=strategy)  # one GAN per fold and setting
    gan_cfg = read_json(Path(gan_dir) / "config.json")
    gh, gw = gan_cfg.get("height"), gan_cfg.get("width")
    if (gh, gw) != (cfg.height, cfg.width):
        raise ValueError(f"--gan-checkpoint {gan_dir} generates {gh}x{gw} pairs but this U-Net trains at "
                         f"{cfg.height}x{cfg.width} (profile {profile}); use a GAN of the same profile")
    generator = load_generator(gan_dir)
    batch_stats = cfg.sampling_bn == "batch"
    # batch statistics over the generated part of each minibatch: one generator call per minibatch
    sampler = GeneratorSampler(generator, gan_cfg.get("latent_dim", 128), C.task_spec(s.task).n_classes,
                               seed=s.seed, training=batch_stats, chunk=cfg.n_generated if batch_stats else 32)
    return sampler, int(gan_cfg.get("iterations", 0)), str(gan_dir)


def strategy_is_local(strategy) -> bool:
    """The quality report runs where the chief writes; skipped on other workers."""
    from gan_seg_aug.training import distribute

    return strategy is None or distribute.is_chief(strategy)


def reference_settings(s: RunSettings, profile: str, fdir: Path) -> RunSettings:
    """The fold's real-pairs-only U-Net (``16-0-NoAug`` / ``8-0-NoAug``, seed 0): the quality report's
    reference network (evaluation/gan_quality.py)."""
    from gan_seg_aug.evaluation.gan_quality import reference_run_name

    return dataclasses.replace(s, profile=profile, mix=f"{C.task_spec(s.task).unet_batch}-0", aug=None, seed=0,
                               out=str(fdir / reference_run_name(s.task)), gan_checkpoint=None)


def ensure_reference_unet(s: RunSettings, profile: str, fdir: Path) -> Path:
    """The reference U-Net's directory, trained now if missing.

    A run restored from a published copy (``tables.py --publish-to`` on a fresh machine) is finished
    but has no network to judge pairs with; it is trained again in its own directory, and the new
    run replaces its row (the earlier one stays in the published history)."""
    ref = reference_settings(s, profile, Path(fdir))
    ref_dir = Path(ref.out)
    if (ref_dir / layout.UNET_DONE).exists() and not (ref_dir / layout.UNET_WEIGHTS).exists():
        if any(f.suffix in layout.WEIGHT_SUFFIXES for f in ref_dir.rglob("*")):
            raise ValueError(f"{ref_dir}: finished, but {layout.UNET_WEIGHTS} is missing while other weights "
                             f"are there; move the directory away to retrain the reference U-Net")
        log.warning(f"the reference U-Net {ref_dir} has no {layout.UNET_WEIGHTS} (a published copy, restored); "
                    f"training it again for the GAN quality report: its row will be this new run")
        shutil.rmtree(ref_dir)
    if not (ref_dir / layout.UNET_DONE).exists():
        log.info(f"training the reference U-Net {ref_dir} for the GAN quality report (real pairs only)")
        run(ref)
    return ref_dir


def final_quality_report(reporter, gan_dir, sampling_bn: str) -> dict:
    """The full report of a finished GAN (once; reused when it exists)."""
    from gan_seg_aug.evaluation.gan_quality import QualitySettings, concerns
    from gan_seg_aug.reporting.gan_report import read_report
    from gan_seg_aug.training.gan_trainer import load_generator

    rep = read_report(gan_dir, sampling_bn)
    if rep is None:
        log.info(f"[quality] report on {gan_dir} (sampling BN {sampling_bn}) ...")
        rep = reporter.final(load_generator(gan_dir), QualitySettings(sampling_bn=sampling_bn),
                             read_json(Path(gan_dir) / layout.GAN_DONE)["iterations"])
    log.info("[quality] " + ", ".join(f"{k} {v:.4g}" for k, v in rep["summary"].items()))
    for concern in concerns(rep):
        log.warning(f"[quality] {gan_dir}: {concern}")
    return rep
