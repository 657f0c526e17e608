"""How good are a pair GAN's image+mask pairs?  A report for one generator, all offline.

The paper judges its GANs only by the U-Nets trained on them (§V) and by eye (thesis Figs. 5.2, 5.8).
A user needs to know *before* spending U-Net hours whether the pairs are usable, so this report
measures them against the fold's real training pairs, each number beside a reference line computed
the same way on real data (real validation vs real training pairs):

* **pair consistency** -- a reference U-Net trained on the fold's real pairs only (the fold's finished
  ``16-0-NoAug`` run) segments the generated images; Dice (SCR) / mIoU (Cityscapes) against the
  generated masks, beside its score on the real validation pairs (the ceiling);
* **mask plausibility** -- SCR: fraction of masks with exactly one connected component, Wasserstein-1
  distances of mask area and centroid to the training masks; Cityscapes: category frequencies;
* **fidelity and diversity** -- Fréchet distance, unbiased KID and k-NN precision / recall
  (Kynkäänniemi et al. 2019) in the reference U-Net's pooled bottleneck features;
* **memorisation** -- each generated image's distance to its nearest training image against the same
  for real validation images; the fraction closer than the 5th percentile of val -> train.

Everything is computed at the GAN's resolution.  ``sampling_bn`` says how the generator's batch norm
normalises (``moving``: Keras inference mode; ``batch``: statistics of each generated minibatch).
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gan_seg_aug.evaluation import mask_statistics as MS
from gan_seg_aug.evaluation import quality_metrics as Q
from gan_seg_aug.evaluation.metrics import confusion_matrix, dice, iou_per_class, mean_of_defined
from gan_seg_aug.config import SAMPLING_BN, task_spec
from gan_seg_aug.data.mask_encoding import decode_mask

log = logging.getLogger(__name__)

SAMPLE_CHUNK = 32  # generated pairs per generator call; batch statistics are over this many with sampling_bn=batch


@dataclass(frozen=True)
class QualitySettings:
    """``n`` generated pairs (drawn with ``seed``) per report; ``k`` neighbours for precision / recall."""

    n: int = 512
    sampling_bn: str = "moving"
    seed: int = 2024
    k: int = 3
    percentile: float = 5.0  # memorisation threshold on the val -> train nearest-neighbour distances
    cheap: bool = False  # the during-training subset: no FD / precision-recall / memorisation, no figure

    def __post_init__(self):
        if self.sampling_bn not in SAMPLING_BN:
            raise ValueError(f"--sampling-bn {self.sampling_bn!r}: expected one of {', '.join(SAMPLING_BN)}")
        if self.n < self.k + 2:
            raise ValueError(f"--n {self.n}: need at least k + 2 = {self.k + 2} generated pairs")


def generate_pairs(generator, n: int, latent_dim: int, n_classes: int, *, sampling_bn: str = "moving",
                   seed: int = 0, chunk: int = SAMPLE_CHUNK):
    """``n`` pairs ``(images float32 [n, H, W, C] in [-1, 1], labels uint8 [n, H, W])``, z ~ N(0, 1)
    (thesis Table 4.1), deterministic in ``seed``; ``sampling_bn="batch"`` normalises each chunk by its
    own statistics (the authors' code), without touching the generator's moving averages."""
    import tensorflow as tf

    rng = np.random.default_rng([seed, 7])
    z = rng.standard_normal((n, latent_dim)).astype(np.float32)
    outs = []
    for i in range(0, n, chunk):
        outs.append(_generate(generator, tf.constant(z[i:i + chunk]), sampling_bn == "batch"))
    x = np.concatenate(outs).astype(np.float32)
    return np.ascontiguousarray(x[..., :-1]), decode_mask(x[..., -1], n_classes)


def _generate(generator, z, batch_stats: bool) -> np.ndarray:
    if not batch_stats:
        return np.asarray(generator(z, training=False))
    # training=True would also update the moving averages; keep them as they were
    saved = [v.numpy() for v in generator.non_trainable_variables]
    out = np.asarray(generator(z, training=True))
    for v, s in zip(generator.non_trainable_variables, saved):
        v.assign(s)
    return out


def feature_model(unet):
    """The reference U-Net's encoded features (Table 4.2 "encoded features", the bottleneck),
    average-pooled over the image: one vector per image."""
    import keras

    bottleneck = unet.get_layer("unet_features_conv2").output
    return keras.Model(unet.input, keras.layers.GlobalAveragePooling2D()(bottleneck))


def _predict(unet, feats, images, batch: int = 32):
    labels, vectors = [], []
    for i in range(0, len(images), batch):
        x = images[i:i + batch]
        labels.append(np.argmax(np.asarray(unet(x, training=False)), axis=-1).astype(np.uint8))
        vectors.append(np.asarray(feats(x, training=False), np.float64))
    return np.concatenate(labels), np.concatenate(vectors)


def _agreement(task: str, pred, target, n_classes: int) -> float:
    if task_spec(task).n_classes == 2 and n_classes == 2:
        return float(np.mean([dice(p == 1, t == 1) for p, t in zip(pred, target)]))
    # one confusion matrix over all pixels of all images, as the Cityscapes evaluation does
    return mean_of_defined(iou_per_class(confusion_matrix(pred, target, n_classes)))


def _mask_block(task: str, labels, ref_labels, n_classes: int) -> dict:
    if n_classes > 2:
        freq, ref = MS.category_frequencies(labels, n_classes), MS.category_frequencies(ref_labels, n_classes)
        return {"category_frequencies": freq.round(5).tolist(), "category_tv_distance": MS.frequency_distance(freq, ref)}
    st, ref = MS.mask_statistics(labels == 1), MS.mask_statistics(ref_labels == 1)
    return {"one_component_fraction": float(np.mean(st["n_components"] == 1)),
            "empty_fraction": float(np.mean(st["n_components"] == 0)),
            "area_w1": MS.wasserstein_1d(st["area"], ref["area"]),
            "centroid_row_w1": MS.wasserstein_1d(st["centroid_row"], ref["centroid_row"]),
            "centroid_col_w1": MS.wasserstein_1d(st["centroid_col"], ref["centroid_col"]),
            "area_mean": float(np.nanmean(st["area"])) if len(st["area"]) else float("nan")}


def quality_report(generator, latent_dim: int, task: str, train, val, unet, settings: QualitySettings, cache=None):
    """The report as a dict (see the module docstring) and the arrays the figure needs.

    ``train`` / ``val``: ``(images, labels)`` of the fold's real pairs at the generator's resolution;
    ``unet``: the reference U-Net at that resolution, or ``None`` (then only the mask and
    memorisation blocks, which need no network); ``cache``: a dict that keeps the reference U-Net's outputs on the
    real pairs between reports of one run (they do not change while the GAN trains)."""
    n_classes = task_spec(task).n_classes
    images, labels = generate_pairs(generator, settings.n, latent_dim, n_classes,
                                    sampling_bn=settings.sampling_bn, seed=settings.seed)
    if images.shape[1:] != train[0].shape[1:]:
        raise ValueError(f"the generator makes {images.shape[1:]} images but the real pairs are {train[0].shape[1:]}")
    rep = {"n_generated": int(settings.n), "n_train": len(train[0]), "n_val": len(val[0]),
           "sampling_bn": settings.sampling_bn, "seed": settings.seed, "cheap": settings.cheap,
           "resolution": list(images.shape[1:3])}
    rep["masks"] = {"generated": _mask_block(task, labels, train[1], n_classes),
                    "real_val": _mask_block(task, val[1], train[1], n_classes)}
    arrays = {"images": images, "labels": labels}
    if unet is not None:
        cache = {} if cache is None else cache
        if "feats" not in cache:
            cache["feats"] = feature_model(unet)
            cache["val"] = _predict(unet, cache["feats"], val[0])
            cache["train"] = _predict(unet, cache["feats"], train[0])
        feats, (v_pred, v_feat), (_, t_feat) = cache["feats"], cache["val"], cache["train"]
        g_pred, g_feat = _predict(unet, feats, images)
        rep["pair_consistency"] = {"generated": _agreement(task, g_pred, labels, n_classes),
                                   "real_val_ceiling": _agreement(task, v_pred, val[1], n_classes),
                                   "metric": "dice" if n_classes == 2 else "miou"}
        kid_g, kid_v = Q.kid(g_feat, t_feat), Q.kid(v_feat, t_feat)
        rep["features"] = {"kid_vs_train": kid_g[0], "kid_real_val_vs_train": kid_v[0], "dim": int(g_feat.shape[1])}
        if not settings.cheap:
            p, r = Q.precision_recall(t_feat, g_feat, k=settings.k)
            pv, rv = Q.precision_recall(t_feat, v_feat, k=settings.k)
            rep["features"].update({
                "fd_vs_train": Q.frechet_distance(g_feat, t_feat), "fd_real_val_vs_train": Q.frechet_distance(v_feat, t_feat),
                "precision": p, "recall": r, "precision_real_val": pv, "recall_real_val": rv, "k": settings.k})
        arrays["predicted"] = g_pred
    if not settings.cheap:
        flat = lambda x: x.reshape(len(x), -1).astype(np.float32)  # noqa: E731
        g_d, g_i = Q.nearest_distances(flat(images), flat(train[0]))
        v_d, _ = Q.nearest_distances(flat(val[0]), flat(train[0]))
        rep["memorisation"] = {**Q.memorisation(g_d, v_d, percentile=settings.percentile),
                               "percentile": settings.percentile, "space": "pixels (image channels)"}
        arrays.update(nn_dist=g_d, nn_index=g_i)
    rep["summary"] = headline(rep)
    return rep, arrays


def headline(rep: dict) -> dict:
    """The few numbers a table row carries (the Table II / IV CSVs, the gan_quality table)."""
    out = {}
    if "pair_consistency" in rep:
        out["pair_consistency"] = rep["pair_consistency"]["generated"]
        out["pair_consistency_ceiling"] = rep["pair_consistency"]["real_val_ceiling"]
    for key in ("kid_vs_train", "fd_vs_train", "precision", "recall"):
        if key in rep.get("features", {}):
            out[key] = rep["features"][key]
    m = rep["masks"]["generated"]
    for key in ("one_component_fraction", "area_w1", "category_tv_distance"):
        if key in m:
            out[key] = m[key]
    if "memorisation" in rep:
        out["memorised_fraction"] = rep["memorisation"]["fraction_below"]
    return out


CONCERN_RATIO = 0.9  # a generated-pair number below 90 % of its real-data reference is worth a warning


def concerns(rep: dict) -> list[str]:
    """Plain-language warnings for the numbers of a report that fall well short of their real-data
    reference line (below ``CONCERN_RATIO`` of it), or memorisation above twice the chance level.
    These are not the paper's (it has no such measures); they tell a user, before the U-Nets train,
    that the pairs differ from real ones in a way the U-Net will see.

    >>> concerns({"pair_consistency": {"generated": 0.43, "real_val_ceiling": 0.98, "metric": "dice"},
    ...           "masks": {"generated": {}, "real_val": {}}})
    ['pair consistency 0.43 (real pairs 0.98): a real-data U-Net often disagrees with the generated masks']
    >>> concerns({"features": {"precision": 0.9, "recall": 0.0, "precision_real_val": 0.93,
    ...                        "recall_real_val": 0.95}, "masks": {"generated": {}, "real_val": {}}})
    ['recall 0.00 (real 0.95): the samples cover little of the real images']
    >>> concerns({"masks": {"generated": {"one_component_fraction": 0.99}, "real_val": {"one_component_fraction": 1.0}}})
    []
    """
    out = []

    def short(value, reference) -> bool:
        return value is not None and reference is not None and value < CONCERN_RATIO * reference

    pc = rep.get("pair_consistency", {})
    if short(pc.get("generated"), pc.get("real_val_ceiling")):
        out.append(f"pair consistency {pc['generated']:.2f} (real pairs {pc['real_val_ceiling']:.2f}): a "
                   f"real-data U-Net often disagrees with the generated masks")
    f = rep.get("features", {})
    for key, what in (("precision", "few samples look like real images"),
                      ("recall", "the samples cover little of the real images")):
        if short(f.get(key), f.get(f"{key}_real_val")):
            out.append(f"{key} {f[key]:.2f} (real {f[f'{key}_real_val']:.2f}): {what}")
    g, r = rep["masks"]["generated"], rep["masks"]["real_val"]
    if short(g.get("one_component_fraction"), r.get("one_component_fraction")):
        out.append(f"one-component masks {g['one_component_fraction']:.2f} (real "
                   f"{r['one_component_fraction']:.2f}): many generated masks are fragmented")
    mem = rep.get("memorisation")
    if mem and mem["fraction_below"] > 2 * mem["percentile"] / 100:
        out.append(f"memorised fraction {mem['fraction_below']:.2f} (chance {mem['percentile'] / 100:.2f}): "
                   f"many samples are near-copies of training images")
    return out


def settings_dict(settings: QualitySettings) -> dict:
    return dataclasses.asdict(settings)


def report_name(sampling_bn: str) -> str:
    """``gan_quality_bn-moving`` (JSON and PNG share the stem), one per sampling mode."""
    return f"gan_quality_bn-{sampling_bn}"


def reference_run_name(task: str) -> str:
    """The fold's U-Net trained on real pairs only: ``16-0-NoAug`` (Table II) / ``8-0-NoAug`` (Table IV)."""
    return f"{task_spec(task).unet_batch}-0-NoAug"


def find_reference_unet(gan_dir, task: str) -> Path | None:
    """The fold's finished real-pairs-only U-Net beside the GAN directory, if there is one."""
    run = Path(gan_dir).parent / reference_run_name(task)
    from gan_seg_aug.layout import UNET_DONE, UNET_WEIGHTS

    return run if (run / UNET_DONE).exists() and (run / UNET_WEIGHTS).exists() else None
