"""`hf-vqvae convert`: a recording in another speaker's voice."""

import argparse
from pathlib import Path

import numpy as np
import torch

from .common import USER_ERRORS, CommandError, add_model_args, add_subparser, check_output_file, load_vqvae


def add_convert_parser(subparsers) -> argparse.ArgumentParser:
    """`hf-vqvae convert`."""
    parser = add_subparser(
        subparsers,
        "convert",
        "Convert a recording to another speaker's voice.",
        "Encode a whole recording (any length, in chunks) with a VQ-VAE whose decoder has speakers, and decode "
        "its codes with another speaker: what is said stays, the voice changes. The recording is mixed to mono, "
        "resampled to the model's rate (the output is written at that rate) and normalised to the model's level; "
        "the output gets the recording's own level back.",
    )
    add_model_args(parser)
    parser.add_argument("input", metavar="INPUT", help="An audio file (WAV, FLAC, MP3, ...).")
    parser.add_argument(
        "--speaker", required=True, help="The target speaker: a name or an id of the model's."
    )
    parser.add_argument("--output", required=True, help="The WAV file to write.")
    parser.set_defaults(run=run_convert, user_errors=USER_ERRORS)
    return parser


def run_convert(args: argparse.Namespace) -> None:
    """Read, convert and write one recording; nothing is written when any step fails."""
    from ..data.audio import decode_audio, mix_channels, resample
    from ..models.vqvae.speakers import speaker_ids_tensor
    from ..pipelines.recordings import convert_voice

    output = Path(args.output)
    if output.suffix.lower() != ".wav":
        raise CommandError(f"--output must be a .wav file, got {args.output!r}.")
    check_output_file(args.output, "--output")
    model = load_vqvae(args.model, args.device)
    if model.config.modality != "audio":
        raise CommandError(
            f"{args.model} is a {model.config.modality} model; voice conversion needs an audio one."
        )
    # An unknown speaker is refused before the file is read; ids may be given as digits.
    speaker_id = int(speaker_ids_tensor(model.config, args.speaker, 1))
    if not Path(args.input).is_file():
        raise CommandError(f"no such file: {args.input!r}.")
    try:
        waveform, rate = decode_audio(args.input)
    except ValueError as error:
        raise CommandError(f"cannot read {args.input!r}: {error}") from error
    waveform = resample(mix_channels(waveform, model.config.in_channels), rate, model.config.sampling_rate)
    converted = convert_voice(
        model, torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32)), speaker_id
    )
    import soundfile

    partial = output.with_name(output.name + ".partial")
    output.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(partial, converted.numpy().T, model.config.sampling_rate, subtype="PCM_16", format="WAV")
    partial.replace(output)
    resampled = f", resampled from {rate} Hz" if rate != model.config.sampling_rate else ""
    name = model.config.id2speaker[speaker_id]
    print(
        f"Converted {args.input} to speaker {name!r}: {output} ({converted.shape[-1] / model.config.sampling_rate:.2f} s "
        f"at {model.config.sampling_rate} Hz{resampled})."
    )
