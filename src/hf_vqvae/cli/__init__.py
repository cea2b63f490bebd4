"""The `hf-vqvae` command: the offline demo, sampling, encoding files to codes and back, and evaluation.

    hf-vqvae demo --output_dir demo_outputs              # image, audio and video models, offline, on a CPU
    hf-vqvae sample demo_outputs/image --class_labels star --num_samples 8
    hf-vqvae encode demo_outputs/image a.png b.jpg --output codes.safetensors
    hf-vqvae decode demo_outputs/image codes.safetensors --output_dir decoded
    hf-vqvae compress demo_outputs/image a.png b.jpg --output compressed    # bitstreams coded with the prior
    hf-vqvae decompress demo_outputs/image compressed/a.vqz --output decompressed
    hf-vqvae evaluate demo_outputs/audio --data builtin:tones --split_percentage 5

A MODEL is a local folder or a Hub repo holding a VQ-VAE at its root (and, for `sample`, a prior in `prior/`).
Mistakes in what is given (a missing model, an unreadable file, codes of the wrong shape) end with a one-line
message on stderr and exit status 2, like argparse's own errors.
"""

import argparse

from .codes_commands import add_decode_parser, add_encode_parser
from .common import CommandError
from .compression_commands import add_compress_parser, add_decompress_parser
from .convert_command import add_convert_parser
from .demo_command import add_demo_parser
from .evaluate_command import add_evaluate_parser
from .sample_command import add_sample_parser


def main(argv: list[str] | None = None) -> int:
    """Run `hf-vqvae` with `argv` (default: the command line). Returns 0; exits with status 2 on bad input."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except args.user_errors as error:
        args.subparser.exit(2, f"{args.subparser.prog}: error: {error}\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """`hf-vqvae` and its subcommands; each subparser records its handler (`run`) and its `user_errors`."""
    parser = argparse.ArgumentParser(
        prog="hf-vqvae", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    subparsers = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    for add in (
        add_demo_parser,
        add_sample_parser,
        add_encode_parser,
        add_decode_parser,
        add_convert_parser,
        add_compress_parser,
        add_decompress_parser,
        add_evaluate_parser,
    ):
        subparser = add(subparsers)
        subparser.set_defaults(subparser=subparser)
    return parser


__all__ = ["CommandError", "build_parser", "main"]
