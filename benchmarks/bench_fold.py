#!/usr/bin/env python
"""One SCR fold end to end, timed stage by stage: where does a cpu-profile fold spend its time?

``python benchmarks/bench_fold.py [--data-dir DIR] [--profile cpu|smoke] [--mix 8-8] [--precision P]
[--no-quality] [--runs-dir DIR] [--out FILE]``

Runs exactly what ``python experiments/scr_lung.py --fold 1 --mix 8-8 --profile cpu`` runs (the fold's
GAN with its quality report and the real-pairs-only reference U-Net it needs, then the 8-8 U-Net and
its evaluation) in a fresh runs directory, and reports seconds for: data loading, GAN training, the
GAN quality report, U-Net training (steps), validation, checkpoint writing, val + test evaluation,
and the rest (writing summaries, building networks, tracing).  Stages are timed exclusively: a stage
that runs inside another (the reference U-Net inside the GAN's stage, validation inside training)
is subtracted from it.  The GAN and U-Net step rates are turned into a fraction of the float32
peak measured by ``hardware.measure_peak`` in the same process (analytic FLOPs: ``flops.py``).

Default data: the embedded synthetic set (numbers meaningless, timings indicative); pass the real
247-case JSRT with ``--data-dir``.  The last line is ONE JSON object; ``--out`` writes it atomically.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class StageClock:
    """Exclusive wall time per stage: time spent in a nested stage is not counted twice."""

    def __init__(self):
        self.seconds, self.calls, self._stack = {}, {}, []

    @contextlib.contextmanager
    def stage(self, name: str):
        t0 = time.perf_counter()
        self._stack.append(0.0)  # time of the children of this stage
        try:
            yield
        finally:
            elapsed = time.perf_counter() - t0
            children = self._stack.pop()
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed - children
            self.calls[name] = self.calls.get(name, 0) + 1
            if self._stack:
                self._stack[-1] += elapsed

    def wrap(self, module, attr: str, name: str):
        """Time every call of ``module.attr`` as stage ``name`` (patched where it is looked up)."""
        fn = getattr(module, attr)

        def timed(*args, **kwargs):
            with self.stage(name):
                return fn(*args, **kwargs)

        setattr(module, attr, timed)


def instrument(clock: StageClock) -> None:
    from gan_seg_aug import experiment
    from gan_seg_aug.evaluation import run_summary
    from gan_seg_aug.training import gan_trainer, unet_trainer

    clock.wrap(experiment, "load_fold", "data_loading")
    clock.wrap(gan_trainer, "train_gan", "gan_training")
    clock.wrap(experiment, "final_quality_report", "gan_quality_report")
    clock.wrap(unet_trainer, "train_unet", "unet_training")
    clock.wrap(unet_trainer, "save_unet_checkpoint", "checkpoint_writing")
    clock.wrap(gan_trainer, "save_gan_checkpoint", "checkpoint_writing")
    clock.wrap(unet_trainer, "_write_history", "checkpoint_writing")
    clock.wrap(run_summary, "evaluate_and_summarise", "evaluation_val_test")
    make_val = unet_trainer.make_validation_loss

    def make_validation_loss(*args, **kwargs):
        fn = make_val(*args, **kwargs)

        def timed():
            with clock.stage("validation"):
                return fn()
        return timed

    unet_trainer.make_validation_loss = make_validation_loss


def step_utilisation(runs_dir: Path, clock: StageClock, peak: dict) -> dict:
    """GAN iterations and U-Net steps per second of the stages' exclusive time, as GFLOP/s and % of
    the float32 peak.  The GAN stage includes its sample grids and during-training quality checks;
    the U-Net stage excludes validation and checkpoint writing; all U-Nets here take 16 pairs a step."""
    from benchmarks import flops
    from gan_seg_aug.artifacts import read_json
    from gan_seg_aug.nets.networks import build_unet
    from gan_seg_aug.training.gan_trainer import build_networks, read_gan_config

    out, f32 = {}, peak["float32_gflops"]
    gans = list(runs_dir.glob("*/*/*/fold*/gan_*/done.json"))
    if gans and clock.seconds.get("gan_training"):
        cfg = read_gan_config(gans[0].parent)
        g, d = build_networks(cfg)
        gflop = flops.wgan_gp_iteration_flops(g, d, cfg.batch_size, cfg.n_critic) / 1e9
        its = sum(read_json(x)["iterations"] for x in gans)
        rate = gflop * its / clock.seconds["gan_training"]
        out["gan"] = {"iterations": its, "gflop_per_iteration": round(gflop, 3), "gflops": round(rate, 1),
                      "pct_of_float32_peak": round(100 * rate / f32, 1)}
    unets = list(runs_dir.glob("*/*/*/fold*/*/train_done.json"))
    if unets and clock.seconds.get("unet_training"):
        cfg = read_json(unets[0].parent / "config.json")["config"]
        model = build_unet(cfg["task"], height=cfg["height"], width=cfg["width"], width_div=cfg["unet_width_div"])
        gflop = flops.train_step_flops(model, cfg["n_real"] + cfg["n_generated"]) / 1e9
        its = sum(read_json(x)["iterations"] for x in unets)
        rate = gflop * its / clock.seconds["unet_training"]
        out["unet"] = {"steps": its, "runs": len(unets), "gflop_per_step": round(gflop, 3), "gflops": round(rate, 1),
                       "pct_of_float32_peak": round(100 * rate / f32, 1)}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/bench_fold.py", description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None, help="JSRT/SCR root (default: the embedded synthetic data)")
    p.add_argument("--allow-partial", action="store_true")
    p.add_argument("--profile", choices=("cpu", "smoke"), default="cpu")
    p.add_argument("--mix", default="8-8")
    from gan_seg_aug.config import AUTO_PRECISION, PRECISIONS

    p.add_argument("--precision", default=AUTO_PRECISION, choices=(AUTO_PRECISION, *PRECISIONS),
                   help="default auto: the profile's on this machine (training/precision.py)")
    p.add_argument("--quality", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--runs-dir", default=None, help="where the runs go (default: a fresh temporary directory)")
    p.add_argument("--out", default=None, help="also write the JSON summary here")
    args = p.parse_args(argv)

    from benchmarks import hardware
    from gan_seg_aug.cli.log_setup import configure
    from gan_seg_aug.experiment import RunSettings, run

    configure(1)
    runs_dir = Path(args.runs_dir or tempfile.mkdtemp(prefix="bench_fold_"))
    peak = hardware.measure_peak(quick=True)
    clock = StageClock()
    instrument(clock)
    settings = RunSettings(task="scr_lung", fold=1, mix=args.mix, profile=args.profile, precision=args.precision,
                           quality=args.quality, data_dir=args.data_dir, allow_partial=args.allow_partial,
                           runs_dir=str(runs_dir))
    from gan_seg_aug.training.precision import choose_precision

    precision = choose_precision(args.precision, args.profile)
    t0 = time.perf_counter()
    with clock.stage("other"):
        summary = run(settings)
    total = time.perf_counter() - t0
    record = {"benchmark": "bench_fold", "profile": args.profile, "mix": args.mix, "precision": precision,
              "quality": args.quality, "dataset": summary["dataset"], "runs_dir": str(runs_dir),
              "wall_seconds": round(total, 1),
              "stages_seconds": {k: round(v, 1) for k, v in sorted(clock.seconds.items(), key=lambda kv: -kv[1])},
              "test_dice": summary["test"].get("dice_mean"), "peak": peak,
              "steps": step_utilisation(runs_dir, clock, peak), "device": hardware.describe_device()}
    for name, secs in record["stages_seconds"].items():
        print(f"{name:>22}: {secs:8.1f} s  ({100 * secs / total:5.1f} %)")
    hardware.emit_summary(record, args.out, "bench_fold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
