"""`hf-vqvae demo`: the offline demo, a small model per modality trained on built-in data."""

import argparse
import time
from pathlib import Path

from ..models.number_checks import positive_int
from ..training import demo
from .common import CommandError, add_subparser, check_output_dir, format_duration, format_table


def add_demo_parser(subparsers) -> argparse.ArgumentParser:
    """`hf-vqvae demo`. Only a missing checkout or an unusable --output_dir counts as a user error: a failing run
    shows its traceback."""
    parser = add_subparser(
        subparsers,
        "demo",
        "Train small image, audio and video models offline.",
        demo.__doc__,
        preformatted=True,
    )
    parser.add_argument(
        "--output_dir", default="demo_outputs", help="One hub-ready folder per modality goes here."
    )
    parser.add_argument(
        "--modalities",
        nargs="+",
        choices=list(demo.RECIPES),
        default=list(demo.RECIPES),
        help="Which models to train (default: all three).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="A ~1-minute run with tiny datasets and few steps (for tests; the models stay poor).",
    )
    parser.add_argument(
        "--num_threads",
        type=positive_int,
        default=1,
        help="Torch CPU threads (default 1: these models are too small to gain much from more, and "
        "threads that wait on each other slow to a crawl when other programs share the CPU).",
    )
    parser.set_defaults(run=run_demo, user_errors=(demo.DemoUnavailableError, CommandError))
    return parser


def run_demo(args: argparse.Namespace) -> None:
    """Train the demo models, then print a summary table."""
    check_output_dir(args.output_dir)  # before training, not after
    start = time.perf_counter()
    results = demo.run_demo(args.output_dir, args.modalities, quick=args.quick, num_threads=args.num_threads)
    print(f"\nhf-vqvae demo finished in {format_duration(time.perf_counter() - start)}:\n")
    print(
        format_table(
            ["modality", "reconstruction (validation)", "codebook", "prior", "time", "folder"],
            [demo_summary_row(result) for result in results],
        )
    )
    print(
        f"\nSample from them with e.g. `hf-vqvae sample {results[0].output_dir}`; "
        f"the summary is also in {Path(args.output_dir) / 'summary.json'}."
    )


def demo_summary_row(result: demo.DemoResult) -> list[str]:
    """One row of the demo's summary table for a `demo.DemoResult`."""
    metrics = result.metrics
    if result.modality == "audio":
        quality = f"SNR {metrics['snr_db']:.1f} dB, log-mel dist. {metrics['log_mel_distance']:.2f}"
    else:
        quality = f"PSNR {metrics['psnr_uint8']:.1f} dB, SSIM {metrics['ssim']:.2f}"
    codebook = f"perplexity {metrics['codebook_perplexity']:.0f} / {result.codebook_size}"
    prior = f"{metrics['prior_bits_per_code']:.2f} bits/code"
    return [
        result.modality,
        quality,
        codebook,
        prior,
        format_duration(result.seconds),
        str(result.output_dir),
    ]
