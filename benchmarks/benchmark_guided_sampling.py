"""Cost of classifier-free guidance: guided sampling (a learned "no label", 2 passes; the class mixture, C passes)
against unguided sampling of the same transformer prior, side by side in one process.

    python benchmarks/benchmark_guided_sampling.py [--code_shape 8 8] [--batch_size 8] [--repeats 3]

The default prior has the released CIFAR-10 prior's sizes (8x8 codes, K=512, 384 wide, 4 layers, 10 classes,
condition dropout so that it holds a "no label"), random weights, eval mode. Runs alternate between the three
settings and each reports its fastest run. Only the printed ratios mean anything: absolute rates depend on the
CPU, which differs from run to run.
"""

import argparse
import math
import time
from copy import deepcopy

import torch
from machine import set_threads

from hf_vqvae.models.prior.configuration_prior import VQPriorConfig
from hf_vqvae.models.prior.modeling_prior import VQPriorModel


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code_shape", type=int, nargs="+", default=[8, 8])
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--num_classes", type=int, default=10)
    parser.add_argument("--hidden_size", type=int, default=384)
    parser.add_argument("--num_layers", type=int, default=4)
    parser.add_argument("--guidance_scale", type=float, default=3.0)
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs of each setting; the fastest counts"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    return parser.parse_args()


def build_priors(args: argparse.Namespace) -> tuple[VQPriorModel, VQPriorModel]:
    """The same prior with a learned "no label" and without one (same weights otherwise)."""
    torch.manual_seed(0)
    config = VQPriorConfig(
        code_shape=args.code_shape,
        num_classes=args.num_classes,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
    )
    without_null_label = VQPriorModel(config).eval()
    with_null_label = VQPriorModel(deepcopy(config)).eval()  # add_null_label changes its model's config
    with_null_label.load_state_dict(without_null_label.state_dict())
    with_null_label.add_null_label(0.1)
    return with_null_label, without_null_label


def main() -> None:
    args = parse_args()
    machine = set_threads(args.threads)
    with_null_label, without_null_label = build_priors(args)
    labels = torch.arange(args.batch_size) % args.num_classes
    settings = {
        "unguided": (with_null_label, 1.0),
        'guided, learned "no label"': (with_null_label, args.guidance_scale),
        "guided, class mixture": (without_null_label, args.guidance_scale),
    }
    seconds = dict.fromkeys(settings, math.inf)
    for prior, scale in settings.values():  # warm-up
        prior.generate(
            args.batch_size, labels, guidance_scale=scale, generator=torch.Generator().manual_seed(0)
        )
    for _ in range(args.repeats):
        for name, (prior, scale) in settings.items():
            start = time.perf_counter()
            prior.generate(
                args.batch_size, labels, guidance_scale=scale, generator=torch.Generator().manual_seed(0)
            )
            seconds[name] = min(seconds[name], time.perf_counter() - start)
    print(machine)
    print(
        f"prior: code grid {args.code_shape}, hidden {args.hidden_size}, {args.num_layers} layers, "
        f"{args.num_classes} classes; batch {args.batch_size}, guidance scale {args.guidance_scale}, "
        f"fastest of {args.repeats} runs each"
    )
    for name, value in seconds.items():
        print(f"{name:28s} {value:7.3f} s   {value / seconds['unguided']:.2f}x unguided")


if __name__ == "__main__":
    main()
