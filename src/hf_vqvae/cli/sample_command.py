"""`hf-vqvae sample`: sample from a prior and decode with the VQ-VAE, through the vq-sample pipeline."""

import argparse
from pathlib import Path

from transformers import pipeline

from ..models.number_checks import non_negative_float, positive_int
from ..models.prior.guidance import GUIDANCE_SCHEDULES
from ..pipelines.exporting import VIDEO_FORMATS, save_outputs
from .common import (
    USER_ERRORS,
    CommandError,
    add_model_args,
    add_subparser,
    check_output_dir,
    load_vqvae,
)


def add_sample_parser(subparsers) -> argparse.ArgumentParser:
    """`hf-vqvae sample`."""
    parser = add_subparser(
        subparsers,
        "sample",
        "Sample new images / audio / video from a model with a prior.",
        "Sample code grids from the prior in MODEL/prior and decode them with the VQ-VAE (the `vq-sample` "
        "pipeline); writes a PNG grid, WAV files or GIF/MP4 files.",
    )
    add_model_args(parser)
    parser.add_argument(
        "--num_samples",
        type=positive_int,
        help="Samples to draw (default: one per label when several are given, else 4).",
    )
    parser.add_argument(
        "--class_labels",
        nargs="+",
        metavar="LABEL",
        help="Class ids or names (one for all samples, or one per sample). A class-conditional "
        "prior without labels cycles through its classes.",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=1.0, help="Below 1 sharpens, above 1 flattens.")
    parser.add_argument("--top_k", type=int, help="Sample among the k most likely codes only.")
    parser.add_argument("--top_p", type=float, help="Nucleus sampling: smallest set of codes with this mass.")
    add_guidance_args(parser)
    parser.add_argument(
        "--prompt",
        metavar="FILE",
        help="Continue this image / recording / clip instead of sampling from nothing: its first "
        "--prompt_fraction (rows, time, frames) is kept and every sample completes it.",
    )
    parser.add_argument(
        "--prompt_fraction",
        type=float,
        help="Share of the code grid's first axis that --prompt fixes (default 0.5).",
    )
    parser.add_argument(
        "--speakers",
        nargs="+",
        help="A VQ-VAE with speakers: one speaker (name or id) for every sample, or one per sample (default: the "
        "samples cycle through the speakers).",
    )
    parser.add_argument("--batch_size", type=positive_int, help="Samples generated at once (default: all).")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="Transformer prior: sample through a static key/value cache with a compiled step (the same samples; "
        "faster for long grids, after a first call that compiles for seconds).",
    )
    parser.add_argument("--output_dir", default="samples")
    parser.add_argument("--video_format", choices=VIDEO_FORMATS, default="gif")
    parser.set_defaults(run=run_sample, user_errors=USER_ERRORS)
    return parser


def add_guidance_args(parser: argparse.ArgumentParser) -> None:
    """`--guidance_scale` and `--guidance_schedule`, which default to the prior's saved ones."""
    parser.add_argument(
        "--guidance_scale",
        type=non_negative_float,
        help="Classifier-free guidance: above 1, samples show their class more clearly (1 = none). Given alone, "
        "the same scale at every code; default: the prior's saved scale and schedule, else 1.",
    )
    parser.add_argument(
        "--guidance_schedule",
        choices=GUIDANCE_SCHEDULES,
        help="How the guidance scale changes over the code grid: the same everywhere (constant), or rising from 0 "
        "at the first code to --guidance_scale at the last (linear, cosine). Default: the prior's saved one, or "
        "constant when --guidance_scale is given.",
    )


def run_sample(args: argparse.Namespace) -> None:
    """Sample with the `vq-sample` pipeline and write the sample set."""
    check_output_dir(args.output_dir)  # before sampling, not after
    vqvae = load_vqvae(args.model, args.device)
    pipe = pipeline("vq-sample", model=vqvae, device=args.device)
    outputs = pipe(
        num_samples=args.num_samples,
        class_labels=sampling_labels(args.class_labels),
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        guidance_scale=args.guidance_scale,
        guidance_schedule=args.guidance_schedule,
        prompt=prompt_file(args.prompt),
        prompt_fraction=args.prompt_fraction,
        speaker_ids=sampling_labels(args.speakers),
        seed=args.seed,
        batch_size=args.batch_size,
        compile=args.compile,
    )
    paths = save_outputs(
        outputs, vqvae.config, args.output_dir, video_format=args.video_format, grid_name="samples_grid.png"
    )
    print(f"Wrote {len(paths)} file(s) to {args.output_dir}: {', '.join(path.name for path in paths)}")


def prompt_file(path: str | None) -> str | None:
    """`--prompt`, checked to be a file (the pipeline reads it as the model's modality)."""
    if path is not None and not Path(path).is_file():
        raise CommandError(f"--prompt: no such file: {path!r}.")
    return path


def sampling_labels(labels: list[str] | None) -> int | str | list | None:
    """Command-line labels as the pipeline takes them: ids as ints, names as strings, one label as a scalar.
    None stays None: the pipeline then cycles a conditional prior through its classes."""
    if labels is None:
        return None
    labels = [int(label) if label.lstrip("-").isdigit() else label for label in labels]
    return labels[0] if len(labels) == 1 else labels
