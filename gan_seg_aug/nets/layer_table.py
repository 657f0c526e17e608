"""Print the networks layer by layer, to read against thesis Tables 4.1-4.4.

    python -m gan_seg_aug.nets.layer_table --task scr_lung [--net all] [--profile paper] [--critic-norm batch]

One row per layer: name, type, kernel, stride, output shape as H x W x C and as the thesis writes
it (W x H x C; the same for the square SCR images), parameter count; then the totals.  With
``--profile paper`` the rows are the tables (the thesis' "Padding 1/2" column is not printed: all
convs use "same" padding, see docs/decisions.md §2).  Only builds the networks (no forward
pass), so even the 74M-parameter SCR generator prints in seconds.
"""
from __future__ import annotations

import argparse
import sys

from gan_seg_aug.config import CRITIC_NORMS, PROFILES, TASKS, get_profile
from gan_seg_aug.nets.networks import build_critic, build_generator, build_unet

NETS = ("generator", "critic", "unet")
COLUMNS = ("layer", "type", "kernel", "stride", "output HxWxC", "thesis WxHxC", "params")


def _pair(value) -> str:
    if value is None:
        return "-"
    a, b = (value, value) if isinstance(value, int) else tuple(value)
    return f"{a}x{b}"


def _shapes(shape) -> tuple[str, str]:
    dims = [int(d) for d in shape[1:]]
    if len(dims) == 3:
        h, w, c = dims
        return f"{h}x{w}x{c}", f"{w}x{h}x{c}"
    flat = "x".join(str(d) for d in dims)
    return flat, flat


def _type(layer) -> str:
    kind = type(layer).__name__
    if kind == "GroupNormalization":
        return f"GroupNorm(groups={layer.groups})"
    if kind == "UpSampling2D":
        return f"UpSampling2D({_pair(layer.size)}, {layer.interpolation})"
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None)
    if kind == "Activation" or (name and name != "linear"):
        return f"{kind}+{name}" if kind != "Activation" else f"Activation({name})"
    return kind


def layer_rows(model) -> list[dict]:
    """One dict per layer (input layers skipped), keys as :data:`COLUMNS`."""
    rows = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        shape = layer.output.shape
        hwc, whc = _shapes(shape)
        kernel = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
        stride = getattr(layer, "strides", None)
        rows.append({"layer": layer.name, "type": _type(layer), "kernel": _pair(kernel),
                     "stride": _pair(stride), "output HxWxC": hwc, "thesis WxHxC": whc,
                     "params": layer.count_params()})
    return rows


def format_table(model, title: str) -> str:
    rows = layer_rows(model)
    cells = [COLUMNS] + [tuple(f"{r[c]:,}" if c == "params" else str(r[c]) for c in COLUMNS) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]

    def line(row):
        return "  ".join(v.rjust(wd) if i == len(COLUMNS) - 1 else v.ljust(wd)
                         for i, (v, wd) in enumerate(zip(row, widths))).rstrip()

    total = model.count_params()
    trainable = sum(int(v.numpy().size) for v in model.trainable_weights)
    out = [title, "Shapes are H x W x C (rows x columns x channels); the thesis tables write W x H x C.",
           line(cells[0]), "-" * len(line(cells[0]))]
    out += [line(r) for r in cells[1:]]
    frozen = f"; non-trainable {total - trainable:,} = batch-norm moving statistics" if total > trainable else ""
    out.append(f"total params: {total:,} (trainable {trainable:,}{frozen})")
    return "\n".join(out)


def build_nets(task: str, profile: str = "paper", net: str = "all", critic_norm: str = "batch") -> list:
    """The networks of ``task`` at the scale of ``profile`` (config.PROFILE_TABLE)."""
    s = get_profile(profile).scale[task]
    size = dict(height=s.height, width=s.width)
    wanted = NETS if net == "all" else (net,)
    builders = {
        "generator": lambda: build_generator(task, width_div=s.gan_width_div, **size),
        "critic": lambda: build_critic(task, width_div=s.gan_width_div, norm=critic_norm, **size),
        "unet": lambda: build_unet(task, width_div=s.unet_width_div, **size),
    }
    return [(name, builders[name]()) for name in wanted]


def render(task: str, profile: str = "paper", net: str = "all", critic_norm: str = "batch") -> str:
    s = get_profile(profile).scale[task]
    tables = []
    for name, model in build_nets(task, profile, net, critic_norm):
        div = s.unet_width_div if name == "unet" else s.gan_width_div
        extra = f", critic norm {critic_norm}" if name == "critic" else ""
        title = (f"== {name} ({model.name}): task {task}, profile {profile}, {s.height}x{s.width} (HxW), "
                 f"width_div {div}{extra}")
        tables.append(format_table(model, title))
    return "\n\n".join(tables)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gan_seg_aug.nets.layer_table", description=__doc__.split("\n")[0])
    parser.add_argument("--task", required=True, choices=TASKS)
    parser.add_argument("--net", default="all", choices=NETS + ("all",))
    parser.add_argument("--profile", default="paper", choices=PROFILES)
    parser.add_argument("--critic-norm", default="batch", choices=CRITIC_NORMS)
    args = parser.parse_args(argv)
    print(render(args.task, args.profile, args.net, args.critic_norm))
    return 0


if __name__ == "__main__":
    sys.exit(main())
