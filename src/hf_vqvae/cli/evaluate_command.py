"""`hf-vqvae evaluate`: reconstruction metrics of a VQ-VAE over a dataset."""

import argparse
import glob
import json
from pathlib import Path

from ..data.columns import speakers_as_ids
from ..models.number_checks import positive_int, split_percentage
from ..models.vqvae.configuration_vqvae import VQVAEConfig
from .common import (
    USER_ERRORS,
    CommandError,
    add_model_args,
    add_subparser,
    check_output_file,
    format_table,
    load_vqvae,
)


def add_evaluate_parser(subparsers) -> argparse.ArgumentParser:
    """`hf-vqvae evaluate`."""
    parser = add_subparser(
        subparsers,
        "evaluate",
        "Reconstruction metrics of a VQ-VAE over a whole dataset.",
        "Encode and decode every example of a dataset and report MSE, PSNR, SSIM (images, video) or SNR and "
        "log-mel distance (audio, over whole recordings), and codebook usage, averaged over all examples.",
    )
    add_model_args(parser)
    parser.add_argument(
        "--data",
        nargs="+",
        required=True,
        help="builtin:shapes / builtin:tones / builtin:sprites / builtin:moving-mnist, a local folder (imagefolder, or "
        "audio / video files), *.parquet files, or a Hub dataset name.",
    )
    parser.add_argument(
        "--split_percentage",
        type=split_percentage,
        help="Evaluate on the held-out split the training scripts carve with "
        "--validation_split_percentage (e.g. 5); default: the whole dataset.",
    )
    parser.add_argument(
        "--max_samples", type=positive_int, help="Evaluate on at most this many (randomly chosen) examples."
    )
    parser.add_argument("--column", help="Column holding the data (default: guessed from the features).")
    parser.add_argument(
        "--speaker_column",
        help="For a VQ-VAE with speakers: the column naming each example's speaker, decoded with it (without it, "
        "with the mean of the speakers).",
    )
    parser.add_argument(
        "--builtin_num_examples",
        type=positive_int,
        help="Size of a built-in dataset (as in training; default: the generator's).",
    )
    parser.add_argument(
        "--batch_size",
        type=positive_int,
        default=64,
        help="Images or clips per forward pass; audio is scored one whole recording at a time.",
    )
    parser.add_argument("--output_json", help="Also write the metrics to this JSON file.")
    parser.set_defaults(run=run_evaluate, user_errors=USER_ERRORS)
    return parser


def run_evaluate(args: argparse.Namespace) -> None:
    """Whole-set reconstruction metrics, printed as a table and optionally written as JSON."""
    from ..evaluation.reconstruction import evaluate_split  # needs accelerate (train extras)

    source = data_source(args.data)
    if args.output_json:
        check_output_file(args.output_json, "--output_json")  # before the whole evaluation, not after
    model = load_vqvae(args.model, args.device)
    raw = evaluation_split(source, args, model.config)
    if args.speaker_column:
        if not model.config.num_speakers:
            raise CommandError("--speaker_column applies to a VQ-VAE with speakers; this one has none.")
        raw = speakers_as_ids(raw, args.speaker_column, list(model.config.id2speaker.values()))
    results = evaluate_split(
        model, raw, args.column, args.batch_size, show_progress_bar=True, speaker_column=args.speaker_column
    )
    print(
        format_table(
            ["metric", "value"],
            [
                [name, f"{value:.4f}" if isinstance(value, float) else str(value)]
                for name, value in results.items()
            ],
        )
    )
    if args.output_json:
        Path(args.output_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output_json).write_text(
            json.dumps({"model": args.model, "data": args.data, **results}, indent=2)
        )
        print(f"Wrote {args.output_json}")


def evaluation_split(source: dict, args: argparse.Namespace, config: VQVAEConfig):
    """The raw examples to evaluate on: the held-out split `--split_percentage` names, else the whole data."""
    from ..data import load_raw_dataset, split_train_validation  # needs the train extras

    options = {"num_examples": args.builtin_num_examples} if args.builtin_num_examples else None
    raw = load_raw_dataset(**source, modality=config.modality, builtin_options=options)
    if args.split_percentage:
        _, raw = split_train_validation(raw, args.split_percentage, max_eval_samples=args.max_samples)
    else:
        raw, _ = split_train_validation(raw, None, max_train_samples=args.max_samples)
    return raw


def data_source(data: list[str]) -> dict:
    """`--data` as `load_raw_dataset` arguments: a built-in or Hub name, a local folder, or data files."""
    first = data[0]
    if len(data) == 1 and Path(first).is_dir():
        return {"train_data_dir": first}
    if len(data) == 1 and (first.startswith("builtin:") or not Path(first).suffix):
        if first.startswith((".", "/", "~")):
            raise CommandError(f"--data: no such folder {first!r}.")
        return {"dataset_name": first}
    missing = [pattern for pattern in data if not glob.glob(pattern)]
    if missing:
        raise CommandError(f"--data: no file matches {missing}.")
    return {"data_files": data}
