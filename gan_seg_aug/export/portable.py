"""A finished pair GAN as a file anyone can use: ``generator.keras`` + ``generator.json``.

The generator (thesis Table 4.1a / 4.3a) maps noise ``z in R^128 ~ N(0, 1)`` (Table 4.1; the run's
``latent_dim``) to an image+mask pair in [-1, 1] (tanh), the mask in the last channel (§4.1).  It is
built from Keras' own layers only (Dense, Reshape, BatchNormalization, ReLU, Conv2DTranspose,
Activation; VarianceScaling initialisers), so ``keras.models.load_model("generator.keras")`` works in
any Python with TensorFlow / Keras 3 and without this package.  ``generator.json`` describes the
interface: shapes, channel order, how the mask channel becomes labels (:func:`encoding.decode_mask`)
and what ``training=`` does to batch norm.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from gan_seg_aug.artifacts import atomic_write_json, provenance, read_json
from gan_seg_aug.config import task_fields, task_spec
from gan_seg_aug.layout import GAN_DONE

KERAS_FILE, INTERFACE_FILE = "generator.keras", "generator.json"


def mask_rule(n_classes: int) -> str:
    """:func:`encoding.decode_mask` in words (the inverse of ``level_k = -1 + 2k/(K-1)``).

    >>> mask_rule(2)
    'label = 1 where the mask channel m > 0, else 0 (threshold at 0, thesis §5.1.2)'
    >>> mask_rule(8).startswith('label = clip(floor((clip(m, -1, 1) + 1) / 2 * 7 + 0.5), 0, 7)')
    True
    """
    if n_classes == 2:
        return "label = 1 where the mask channel m > 0, else 0 (threshold at 0, thesis §5.1.2)"
    return (f"label = clip(floor((clip(m, -1, 1) + 1) / 2 * {n_classes - 1} + 0.5), 0, {n_classes - 1}): "
            f"the nearest of the {n_classes} evenly spaced levels -1 + 2k/{n_classes - 1}, k = 0..{n_classes - 1}")


def _foreign_classes(model) -> list[str]:
    """Classes in the model's saved config that are not Keras' own (they would not load without this package)."""
    import keras

    found = []

    def walk(o):
        if isinstance(o, dict):
            if "class_name" in o and "module" in o and not str(o["module"]).startswith("keras"):
                found.append(f"{o['module']}.{o['class_name']}")
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(keras.saving.serialize_keras_object(model))
    return sorted(set(found))


def interface(gan_dir, generator=None) -> dict:
    """The ``generator.json`` record of a finished run (``generator`` given: its shapes are checked)."""
    from gan_seg_aug.training.gan_trainer import read_gan_config

    gan_dir = Path(gan_dir)
    cfg = read_gan_config(gan_dir)
    spec = task_spec(cfg.task)
    record = read_json(gan_dir / "config.json")
    out_shape = [None, cfg.height, cfg.width, spec.pair_channels]
    if generator is not None:
        got = [None, *generator.output_shape[1:]]
        if got != out_shape or list(generator.input_shape) != [None, cfg.latent_dim]:
            raise ValueError(f"{gan_dir}: the generator maps {generator.input_shape} -> {got}, "
                             f"but config.json says [None, {cfg.latent_dim}] -> {out_shape}")
    return {
        "file": KERAS_FILE,
        "load": f"keras.models.load_model('{KERAS_FILE}')  # Keras 3; only built-in layers, no custom objects",
        "input": {"name": "z", "shape": ["n", cfg.latent_dim], "dtype": "float32",
                  "distribution": "standard normal N(0, 1), independent entries (thesis Table 4.1: z in R^128 ~ N(0, 1))"},
        "output": {"shape": ["n", cfg.height, cfg.width, spec.pair_channels], "dtype": "float32",
                   "range": [-1.0, 1.0], "activation": "tanh",
                   "channels": [f"image_{c}" for c in range(spec.image_channels)] + ["mask"],
                   "layout": (f"channels 0..{spec.image_channels - 1}: the image "
                              f"({'grey' if spec.image_channels == 1 else 'RGB'}; uint8 = round((x + 1) * 127.5)); "
                              f"channel {spec.image_channels} (last): the mask")},
        "mask_to_labels": mask_rule(spec.n_classes),
        **task_fields(cfg.task), "n_classes": spec.n_classes, "class_names": list(spec.class_names),
        "image_channels": spec.image_channels, "latent_dim": cfg.latent_dim,
        "batch_norm": ("generator(z, training=False) normalises with the moving averages learnt in training "
                       "(Keras inference mode); generator(z, training=True) with the statistics of the batch z "
                       "(as the authors' sampling code), so each pair then depends on the rest of its batch, and "
                       "Keras also updates the loaded model's moving averages in place (reload to undo)"),
        "gan_run": {"dir": str(gan_dir.resolve()), "dataset": record.get("dataset"), "profile": cfg.profile,
                    "critic_norm": cfg.critic_norm, "iterations": cfg.iterations, "seed": cfg.seed,
                    "precision": cfg.precision},
    }


def export_generator(gan_dir) -> Path:
    """Save a finished run's generator as ``<gan_dir>/generator.keras`` (atomically) with its
    ``generator.json`` interface description beside it; returns the ``.keras`` path."""
    from gan_seg_aug.training.gan_trainer import load_generator

    gan_dir = Path(gan_dir)
    if not (gan_dir / GAN_DONE).exists():
        raise FileNotFoundError(f"{gan_dir}: not a finished GAN run (no {GAN_DONE}); train it with "
                                f"experiments/train_gan.py first")
    return save_portable(load_generator(gan_dir), gan_dir)


def save_portable(g, gan_dir) -> Path:
    """``generator.keras`` + ``generator.json`` of generator ``g`` in ``gan_dir`` (whose ``config.json``
    describes it); called by the training loop just before it writes ``done.json``."""
    import keras

    gan_dir = Path(gan_dir)
    foreign = _foreign_classes(g)
    if foreign:  # the generator is Keras-only by construction (models.build_generator); keep it that way
        raise TypeError(f"{gan_dir}: the generator uses classes outside Keras ({', '.join(foreign)}); "
                        f"{KERAS_FILE} would not load without gan_seg_aug")
    record = interface(gan_dir, g)
    dest = gan_dir / KERAS_FILE
    tmp = gan_dir / f".{KERAS_FILE}.{os.getpid()}.tmp.keras"  # Keras insists on the .keras suffix
    try:
        g.save(tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    record["sha256"] = hashlib.sha256(dest.read_bytes()).hexdigest()
    record["provenance"] = provenance(keras=keras.__version__, profile=record["gan_run"]["profile"],
                                      dataset=record["gan_run"]["dataset"], seed=record["gan_run"]["seed"],
                                      iterations=record["gan_run"]["iterations"])
    atomic_write_json(gan_dir / INTERFACE_FILE, record)
    return dest
