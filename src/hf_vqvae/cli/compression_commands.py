"""`hf-vqvae compress` and `hf-vqvae decompress`: files to bitstreams coded with the prior, and back."""

import argparse
import math
from pathlib import Path

from transformers import pipeline

from ..models.vqvae.modalities import IMAGE
from ..models.vqvae.speakers import speaker_ids_tensor
from ..pipelines.compression import (
    CompressedFileError,
    checked_file,
    compress_many,
    decompress_many,
    model_fingerprint,
)
from ..pipelines.exporting import VIDEO_FORMATS, write_output
from ..pipelines.outputs import postprocess_samples
from .codes_commands import read_inputs
from .common import (
    USER_ERRORS,
    CommandError,
    add_model_args,
    add_subparser,
    check_output_dir,
    format_table,
    load_vqvae,
)
from .sample_command import sampling_labels

SUFFIX = ".vqz"


def add_compress_parser(subparsers) -> argparse.ArgumentParser:
    """`hf-vqvae compress`."""
    parser = add_subparser(
        subparsers,
        "compress",
        "Compress files to bitstreams: their codes, entropy-coded with the prior.",
        "Encode each file with the VQ-VAE (brought to the model's size as `encode` does) and entropy-code its "
        "codes with the prior in MODEL/prior (a range coder over the prior's conditional distributions). Writes "
        f"DIR/<name>{SUFFIX} per file; `decompress` with the same model reads them back.",
    )
    add_model_args(parser)
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help=f"Files of the model's modality (images: {', '.join(IMAGE.file_extensions)}).",
    )
    parser.add_argument("--output", required=True, metavar="DIR", help="Folder for the compressed files.")
    parser.add_argument(
        "--class_label",
        help="Class id or name to condition a class-conditional prior on (stored in each file; without it, the "
        "prior's unconditional distribution codes the files).",
    )
    parser.add_argument(
        "--speaker",
        help="A VQ-VAE with speakers: the voice the files decode with (name or id; default the first).",
    )
    parser.set_defaults(run=run_compress, user_errors=(*USER_ERRORS, ImportError))  # without the extra
    return parser


def add_decompress_parser(subparsers) -> argparse.ArgumentParser:
    """`hf-vqvae decompress`."""
    parser = add_subparser(
        subparsers,
        "decompress",
        "Decompress files made by `compress` with the same model.",
        f"Decode each {SUFFIX} file's codes with the prior and the VQ-VAE, and write DIR/<name>.png / .wav / .gif.",
    )
    add_model_args(parser)
    parser.add_argument("inputs", nargs="+", metavar=f"FILE{SUFFIX}")
    parser.add_argument("--output", required=True, metavar="DIR", help="Folder for the decoded files.")
    parser.add_argument("--video_format", choices=VIDEO_FORMATS, default="gif")
    parser.set_defaults(run=run_decompress, user_errors=(*USER_ERRORS, ImportError))
    return parser


def load_pipeline(args: argparse.Namespace):
    vqvae = load_vqvae(args.model, args.device)
    return pipeline("vq-sample", model=vqvae, device=args.device)


def run_compress(args: argparse.Namespace) -> None:
    check_output_dir(args.output, "--output")
    pipe = load_pipeline(args)
    inputs = read_inputs(args.inputs, pipe.model.config)
    num_codes = math.prod(pipe.prior.config.code_shape)
    fixed_bytes = num_codes * math.ceil(math.log2(pipe.prior.config.codebook_size)) / 8
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    label = None if args.class_label is None else pipe.class_id(sampling_labels([args.class_label]))
    speaker = None
    if args.speaker is not None:
        speaker = int(speaker_ids_tensor(pipe.model.config, sampling_labels([args.speaker]), 1)[0])
    files = compress_many(pipe.model, pipe.prior, inputs, label, speaker)
    rows = []
    for path, data in zip(args.inputs, files, strict=True):
        target = output / (Path(path).stem + SUFFIX)
        target.write_bytes(data)
        rows.append(
            [
                str(target),
                str(len(data)),
                f"{8 * len(data) / num_codes:.2f}",
                f"{len(data) / fixed_bytes:.2f}x",
            ]
        )
    print(format_table(["file", "bytes", "bits per code", "of fixed-width codes"], rows))


def run_decompress(args: argparse.Namespace) -> None:
    check_output_dir(args.output, "--output")
    pipe = load_pipeline(args)
    fingerprint = model_fingerprint(pipe.model, pipe.prior)
    paths = [Path(path) for path in args.inputs]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise CommandError(f"no such file: {missing[0]!r}.")
    files = [path.read_bytes() for path in paths]
    for path, data in zip(paths, files, strict=True):  # each checked here, so that an error names its file
        try:
            checked_file(pipe.model, pipe.prior, data, fingerprint)
        except CompressedFileError as error:
            raise CommandError(f"cannot decompress {str(path)!r}: {error}") from error
    decoded = decompress_many(pipe.model, pipe.prior, files)
    outputs = postprocess_samples(decoded, pipe.model.config, "pil")
    for path, output in zip(paths, outputs, strict=True):
        written = write_output(output, pipe.model.config, Path(args.output) / path.stem, args.video_format)
        print(f"{path} -> {written}")
