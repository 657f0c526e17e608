"""The figure of a GAN quality report (cv2 only, so a plain install can draw it).

Three labelled rows: generated pairs (image with its mask outlined, and the raw mask), the generated
images closest to a training image beside that training image (memorisation), and mask-area
histograms of generated vs real training masks (SCR) or category frequencies (Cityscapes).
"""
from __future__ import annotations

import cv2
import numpy as np

TILE = 128
WHITE, GREEN, RED, GREY = (255, 255, 255), (60, 200, 60), (60, 60, 230), (40, 40, 40)


def _to_bgr(image) -> np.ndarray:
    u8 = np.clip((np.asarray(image, np.float32) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    u8 = np.repeat(u8, 3, axis=-1) if u8.shape[-1] == 1 else u8[..., ::-1]
    return cv2.resize(u8, (TILE * u8.shape[1] // u8.shape[0], TILE), interpolation=cv2.INTER_NEAREST)


def _overlay(image, labels) -> np.ndarray:
    tile = _to_bgr(image).copy()
    lab = cv2.resize(labels.astype(np.uint8), (tile.shape[1], tile.shape[0]), interpolation=cv2.INTER_NEAREST)
    for c in np.unique(lab):
        if c == 0:
            continue
        contours, _ = cv2.findContours((lab == c).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(tile, contours, -1, RED, 1)
    return tile


def _mask_tile(labels, n_classes: int) -> np.ndarray:
    u8 = (labels.astype(np.float32) * (255.0 / max(n_classes - 1, 1))).astype(np.uint8)
    u8 = cv2.resize(u8, (TILE * u8.shape[1] // u8.shape[0], TILE), interpolation=cv2.INTER_NEAREST)
    return cv2.applyColorMap(u8, cv2.COLORMAP_VIRIDIS) if n_classes > 2 else np.repeat(u8[..., None], 3, axis=-1)


def _label(tile, text: str, colour=WHITE) -> np.ndarray:
    out = tile.copy()
    cv2.rectangle(out, (0, 0), (out.shape[1], 14), GREY, -1)
    cv2.putText(out, text, (2, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.35, colour, 1, cv2.LINE_AA)
    return out


def _row(tiles, title: str) -> np.ndarray:
    body = np.concatenate([np.pad(t, ((0, 0), (0, 4), (0, 0))) for t in tiles], axis=1)
    head = np.zeros((20, body.shape[1], 3), np.uint8)
    cv2.putText(head, title, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.5, WHITE, 1, cv2.LINE_AA)
    return np.concatenate([head, body], axis=0)


def _histogram(gen, real, title: str, width: int, bins: int = 24) -> np.ndarray:
    gen, real = np.asarray(gen, float), np.asarray(real, float)
    lo, hi = float(np.nanmin(np.r_[gen, real, 0.0])), float(np.nanmax(np.r_[gen, real, 1e-6]))
    edges = np.linspace(lo, hi + 1e-9, bins + 1)
    hg = np.histogram(gen[np.isfinite(gen)], edges)[0] / max(np.isfinite(gen).sum(), 1)
    hr = np.histogram(real[np.isfinite(real)], edges)[0] / max(np.isfinite(real).sum(), 1)
    h, top = TILE, max(hg.max(), hr.max(), 1e-9)
    img = np.zeros((h, width, 3), np.uint8)
    bw = width / bins
    for i in range(bins):
        for k, (v, colour) in enumerate(((hr[i], GREEN), (hg[i], RED))):
            x0 = int(i * bw + k * bw / 2)
            cv2.rectangle(img, (x0, h - 1), (int(x0 + bw / 2) - 1, h - 1 - int((h - 30) * v / top)), colour, -1)
    cv2.putText(img, f"{title} [{lo:.3g}, {hi:.3g}]", (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, WHITE, 1, cv2.LINE_AA)
    cv2.putText(img, "real train", (4, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.35, GREEN, 1, cv2.LINE_AA)
    cv2.putText(img, "generated", (80, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.35, RED, 1, cv2.LINE_AA)
    return img


def report_figure(report: dict, arrays: dict, train_images, train_labels, n_classes: int, title: str,
                  n_show: int = 8) -> np.ndarray:
    """BGR uint8 image of one report."""
    images, labels = arrays["images"], arrays["labels"]
    n_show = min(n_show, len(images))
    rows = [_row([_label(_overlay(images[i], labels[i]), f"gen {i}: image+mask") for i in range(n_show)],
                 "generated pairs (mask outlined in red)"),
            _row([_label(_mask_tile(labels[i], n_classes), f"gen {i}: mask") for i in range(n_show)],
                 "their mask channels, decoded")]
    if "nn_dist" in arrays:
        closest = np.argsort(arrays["nn_dist"])[: max(1, n_show // 2)]
        tiles = []
        for i in closest:
            j = int(arrays["nn_index"][i])
            tiles += [_label(_to_bgr(images[i]), f"gen {i} d={arrays['nn_dist'][i]:.1f}", RED),
                      _label(_to_bgr(train_images[j]), f"nearest train {j}", GREEN)]
        rows.append(_row(tiles, "closest generated images and their nearest training image (memorisation)"))
    width = rows[0].shape[1]
    if n_classes == 2:
        from gan_seg_aug.evaluation.mask_statistics import mask_statistics

        g, r = mask_statistics(labels == 1), mask_statistics(train_labels == 1)
        hists = [_histogram(g[k], r[k], k, width // 3 - 4) for k in ("area", "centroid_row", "centroid_col")]
    else:
        from gan_seg_aug.evaluation.mask_statistics import category_frequencies

        g, r = category_frequencies(labels, n_classes), category_frequencies(train_labels, n_classes)
        hists = [_histogram(np.repeat(np.arange(n_classes), (g * 1000).astype(int)),
                            np.repeat(np.arange(n_classes), (r * 1000).astype(int)), "category", width - 4,
                            bins=n_classes)]
    hist_row = np.concatenate([np.pad(h, ((0, 0), (0, 4), (0, 0))) for h in hists], axis=1)
    hist_row = np.pad(hist_row, ((0, 0), (0, max(0, width - hist_row.shape[1])), (0, 0)))[:, :width]
    rows.append(_row([hist_row[:, :-4]], "mask statistics: generated vs real training masks"))
    summary = ", ".join(f"{k} {v:.3g}" for k, v in report.get("summary", {}).items())
    head = np.zeros((36, width, 3), np.uint8)
    cv2.putText(head, title, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, WHITE, 1, cv2.LINE_AA)
    cv2.putText(head, summary[:160], (4, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.35, WHITE, 1, cv2.LINE_AA)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) if r.shape[1] < width else r[:, :width] for r in rows]
    return np.concatenate([head, *rows], axis=0)
