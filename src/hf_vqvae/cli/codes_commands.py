"""`hf-vqvae encode` and `hf-vqvae decode`: files to code grids and back."""

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..models.number_checks import positive_int
from ..models.vqvae.configuration_vqvae import VQVAEConfig
from ..models.vqvae.modalities import IMAGE
from ..models.vqvae.speakers import speaker_ids_tensor
from ..pipelines.exporting import VIDEO_FORMATS, write_output
from ..pipelines.outputs import postprocess_samples
from .common import (
    USER_ERRORS,
    CommandError,
    add_model_args,
    add_subparser,
    check_output_dir,
    check_output_file,
    load_vqvae,
)

CODES_KEY = "codes"


CODES_FORMATS = (".safetensors", ".npy")


def add_encode_parser(subparsers) -> argparse.ArgumentParser:
    """`hf-vqvae encode`."""
    parser = add_subparser(
        subparsers,
        "encode",
        "Encode image, audio or video files to code grids.",
        "Encode files with the VQ-VAE. Each input is first brought to the model's size, as in validation: "
        "images resized and centre-cropped to sample_size; audio mixed to mono, resampled to sampling_rate, "
        "scaled so its peak is the model's audio_peak_level (decoding gives that level back, not the "
        "recording's own) and cut to its centred sample_size window; video cut to its centred clip. Saves "
        "int64 code grids (N, *code_shape) and the input file names: in the safetensors metadata, or for X.npy "
        "in X.npy.json beside it.",
    )
    add_model_args(parser)
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help=f"Image ({', '.join(IMAGE.file_extensions)}), audio (WAV, FLAC, ...) or video (MP4, GIF, "
        "AVI, ...) files, matching the model's modality.",
    )
    parser.add_argument("--output", required=True, help="codes.safetensors or codes.npy")
    parser.add_argument("--batch_size", type=positive_int, default=16)
    parser.set_defaults(run=run_encode, user_errors=USER_ERRORS)
    return parser


def run_encode(args: argparse.Namespace) -> None:
    """Preprocess and encode the input files, and save their code grids."""
    output = Path(args.output)
    if output.suffix not in CODES_FORMATS:
        raise CommandError(f"--output must end with one of {CODES_FORMATS}, got {args.output!r}.")
    check_output_file(args.output, "--output")
    model = load_vqvae(args.model, args.device)
    inputs = read_inputs(args.inputs, model.config)
    with torch.no_grad():
        codes = torch.cat(
            [model.encode(batch.to(model.device)).codes.cpu() for batch in inputs.split(args.batch_size)]
        )
    save_codes(output, codes, args.inputs, args.model)
    print(f"Encoded {len(codes)} file(s) to {output}: code grids of shape {tuple(codes.shape[1:])}.")


def read_inputs(paths: Sequence[str], config: VQVAEConfig) -> torch.Tensor:
    """Preprocess files into one batch of model inputs, as in validation (centred, nothing random)."""
    # Imported here: the data package needs the train extras (datasets, PyAV, soundfile), `sample` does not.
    from ..data import build_preprocessor

    extensions = config.modality_spec.file_extensions
    preprocessor = build_preprocessor(config, train=False)
    inputs = []
    for path in map(Path, paths):
        if path.suffix.lower() not in extensions:
            raise CommandError(
                f"cannot encode {str(path)!r} with this {config.modality} model: expected a "
                f"file ending with one of {', '.join(extensions)}."
            )
        if not path.is_file():
            raise CommandError(f"no such file: {str(path)!r}.")
        try:
            inputs.append(preprocessor(str(path)))
        except ValueError as error:
            raise CommandError(f"cannot read {str(path)!r}: {error}") from error
    return torch.stack(inputs)


def save_codes(path: Path, codes: torch.Tensor, names: list[str], model: str) -> None:
    """Write int64 code grids and the names of the files they encode (as metadata, or in a JSON file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    codes = codes.to(torch.int64).contiguous()
    if path.suffix == ".safetensors":
        save_file({CODES_KEY: codes}, path, metadata={"file_names": json.dumps(names), "model": model})
    else:
        np.save(path, codes.numpy())
        _names_file(path).write_text(json.dumps({"file_names": names, "model": model}, indent=2))


def load_codes(path: Path) -> tuple[torch.LongTensor, list[str] | None, str | None]:
    """Code grids and, when recorded, the names of the files they encode and the model that encoded them (never
    unpickles)."""
    if path.suffix not in CODES_FORMATS:
        raise CommandError(f"CODES must be a {' or '.join(CODES_FORMATS)} file, got {str(path)!r}.")
    if not path.is_file():
        raise CommandError(f"no such file: {str(path)!r}.")
    if path.suffix == ".safetensors":
        try:
            tensors = load_file(path)
        except SafetensorError as error:
            raise CommandError(
                f"{str(path)!r} is damaged or truncated and cannot be read ({error}); encode the files again."
            ) from error
        if CODES_KEY not in tensors:
            raise CommandError(f"{str(path)!r} holds no {CODES_KEY!r} tensor (it has {sorted(tensors)}).")
        codes = tensors[CODES_KEY]
        with safe_open(path, framework="pt") as file:
            metadata = file.metadata() or {}
        names = json.loads(metadata["file_names"]) if "file_names" in metadata else None
    else:
        try:
            codes = torch.from_numpy(np.load(path, allow_pickle=False))
        except (ValueError, EOFError) as error:  # numpy's errors for a cut or garbled .npy
            raise CommandError(
                f"{str(path)!r} is damaged or truncated and cannot be read ({error}); encode the files again."
            ) from error
        names_file = next((f for f in (_names_file(path), path.with_suffix(".json")) if f.is_file()), None)
        metadata = json.loads(names_file.read_text()) if names_file is not None else {}
        names = metadata.get("file_names") if isinstance(metadata, dict) else None
    if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
        raise CommandError(f"codes must be integers, got dtype {codes.dtype} in {str(path)!r}.")
    if not isinstance(names, list) or len(names) != len(codes):
        names = None  # the names do not describe these grids; number the outputs instead
    return codes.long(), names, metadata.get("model")


def _names_file(codes_path: Path) -> Path:
    """`codes.npy.json`: a name no other file of the user's is likely to have, so writing it loses nothing.
    (Files written before 2026-12-04 named it `codes.json`; `load_codes` still reads those.)"""
    return codes_path.with_name(codes_path.name + ".json")


def add_decode_parser(subparsers) -> argparse.ArgumentParser:
    """`hf-vqvae decode`."""
    parser = add_subparser(
        subparsers,
        "decode",
        "Decode code grids back to image, audio or video files.",
        "Decode the code grids `hf-vqvae encode` wrote (or any integer grids (N, *code_shape)) with the "
        "VQ-VAE: one PNG, WAV or GIF/MP4 file per grid, named after the encoded file when it was recorded.",
    )
    add_model_args(parser)
    parser.add_argument("codes", metavar="CODES", help="A .safetensors (tensor 'codes') or .npy file.")
    parser.add_argument("--output_dir", default="decoded")
    parser.add_argument("--batch_size", type=positive_int, default=16)
    parser.add_argument("--video_format", choices=VIDEO_FORMATS, default="gif")
    parser.add_argument(
        "--speaker",
        help="A VQ-VAE with speakers: the speaker (name or id) every grid is decoded with (default: the mean of the "
        "speakers).",
    )
    parser.set_defaults(run=run_decode, user_errors=USER_ERRORS)
    return parser


def run_decode(args: argparse.Namespace) -> None:
    """Decode saved code grids to one file each."""
    check_output_dir(args.output_dir)
    model = load_vqvae(args.model, args.device)
    codes, names, encoded_with = load_codes(Path(args.codes))
    if encoded_with is not None and not same_model(encoded_with, args.model):
        print(
            f"warning: {args.codes} was encoded with {encoded_with!r}; decoding it with {args.model!r} gives "
            "other signals unless both are the same model.",
            file=sys.stderr,
        )
    speaker = None
    if args.speaker is not None:  # an unknown speaker fails before any decoding; ids may be given as digits
        speaker = int(speaker_ids_tensor(model.config, args.speaker, 1))
    with torch.no_grad():
        decoded = torch.cat(
            [
                model.decode(batch.to(model.device), speaker_ids=speaker).float().cpu()
                for batch in codes.split(args.batch_size)
            ]
        )
    stems = output_stems(names, len(decoded))
    paths = [
        write_output(output, model.config, Path(args.output_dir) / stem, args.video_format)
        for output, stem in zip(postprocess_samples(decoded, model.config), stems, strict=True)
    ]
    print(f"Decoded {len(paths)} code grid(s) to {args.output_dir}.")


def same_model(first: str, second: str) -> bool:
    """Whether two MODEL arguments name the same model: the same folder however it is spelt, or the same repo id."""
    if Path(first).is_dir() and Path(second).is_dir():
        return Path(first).resolve() == Path(second).resolve()
    return first == second


def output_stems(names: list[str] | None, count: int) -> list[str]:
    """File stems for decoded outputs: the encoded files' stems (made unique), else `decoded_{i}`."""
    if names is None:
        return [f"decoded_{index}" for index in range(count)]
    stems = [Path(name).stem for name in names]
    return [stem if stems.count(stem) == 1 else f"{stem}_{index}" for index, stem in enumerate(stems)]
