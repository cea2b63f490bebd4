"""The `hf-vqvae` command: the offline demo, sampling, encoding files to codes and back, and evaluation.

    hf-vqvae demo --output_dir demo_outputs              # image, audio and video models, offline, on a CPU
    hf-vqvae sample demo_outputs/image --class_labels star --num_samples 8
    hf-vqvae encode demo_outputs/image a.png b.jpg --output codes.safetensors
    hf-vqvae decode demo_outputs/image codes.safetensors --output_dir decoded
    hf-vqvae evaluate demo_outputs/audio --data builtin:tones --split_percentage 5

A MODEL is a local folder or a Hub repo holding a VQ-VAE at its root (and, for `sample`, a prior in `prior/`).
Mistakes in what is given (a missing model, an unreadable file, codes of the wrong shape) end with a one-line
message on stderr and exit status 2, like argparse's own errors.
"""

import argparse
import glob
import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, pipeline

from .models.number_checks import non_negative_float, positive_int, split_percentage
from .models.vqvae.configuration_vqvae import VQVAEConfig
from .models.vqvae.modeling_vqvae import VQVAEModel
from .pipelines.exporting import (
    export_to_gif,
    export_to_mp4,
    postprocess_samples,
    save_audio,
    save_image_grid,
    save_videos,
)
from .training import demo

IMAGE_EXTENSIONS = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
VIDEO_FORMATS = ("gif", "mp4")
CODES_KEY = "codes"
CODES_FORMATS = (".safetensors", ".npy")
# What a Hub repo id looks like ("name" or "org/name"); anything else that does not exist is a mistyped path.
HUB_REPO_ID = re.compile(r"[\w][\w.-]*(/[\w][\w.-]*)?")


class CommandError(Exception):
    """A mistake in what the user gave; `main` reports it as one line and exits with status 2."""


# Errors that mean "bad input" rather than "bug": the library raises ValueError for inputs it cannot use
# (wrong shapes, out-of-range codes, undecodable files), and loading raises OSError for missing files.
USER_ERRORS = (CommandError, ValueError, OSError, SafetensorError)


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
        add_evaluate_parser,
    ):
        subparser = add(subparsers)
        subparser.set_defaults(subparser=subparser)
    return parser


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    """MODEL and --device, shared by the commands that load a model."""
    parser.add_argument("model", metavar="MODEL", help="Local folder or Hub repo id of the VQ-VAE.")
    parser.add_argument(
        "--device",
        default="cpu",
        type=available_device,
        help="Torch device to run on, e.g. cpu, cuda, cuda:1, mps.",
    )


def available_device(value: str) -> str:
    """An argparse type: a torch device that this machine and torch build have."""
    try:
        torch.empty(0, device=value)
    except (RuntimeError, AssertionError) as error:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a device this torch can use (e.g. cpu, cuda, cuda:1, mps): {error}"
        ) from error
    return value


def _add_subparser(
    subparsers, name: str, help_text: str, description: str, preformatted: bool = False
) -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter if preformatted else argparse.HelpFormatter
    return subparsers.add_parser(name, help=help_text, description=description, formatter_class=formatter)


# ----------------------------------------------------------------------------------------------------------
# demo


def add_demo_parser(subparsers) -> argparse.ArgumentParser:
    """`hf-vqvae demo`. Only a missing checkout or an unusable --output_dir counts as a user error: a failing run
    shows its traceback."""
    parser = _add_subparser(
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


# ----------------------------------------------------------------------------------------------------------
# sample


def add_sample_parser(subparsers) -> argparse.ArgumentParser:
    """`hf-vqvae sample`."""
    parser = _add_subparser(
        subparsers,
        "sample",
        "Sample new images / audio / video from a model with a prior.",
        "Sample code grids from the prior in MODEL/prior and decode them with the VQ-VAE (the `vq-sample` "
        "pipeline); writes a PNG grid, WAV files or GIF/MP4 files.",
    )
    _add_model_args(parser)
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
    parser.add_argument(
        "--guidance_scale",
        type=non_negative_float,
        help="Classifier-free guidance: above 1, samples show their class more clearly (1 = none; default: the "
        "prior's saved default, else 1).",
    )
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
    parser.add_argument("--batch_size", type=positive_int, help="Samples generated at once (default: all).")
    parser.add_argument("--output_dir", default="samples")
    parser.add_argument("--video_format", choices=VIDEO_FORMATS, default="gif")
    parser.set_defaults(run=run_sample, user_errors=USER_ERRORS)
    return parser


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
        prompt=prompt_file(args.prompt),
        prompt_fraction=args.prompt_fraction,
        seed=args.seed,
        batch_size=args.batch_size,
    )
    paths = write_sample_set(outputs, vqvae.config, Path(args.output_dir), args.video_format)
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


def write_sample_set(outputs: list, config: VQVAEConfig, output_dir: Path, video_format: str) -> list[Path]:
    """The pipeline's outputs as files: one PNG grid (images), WAV files (audio), GIF/MP4 files (video)."""
    if config.modality == "image":
        return [save_image_grid(outputs, output_dir / "samples_grid.png")]
    if config.modality == "audio":
        return save_audio(outputs, output_dir)
    return save_videos(outputs, output_dir, config.fps, video_format=video_format)


# ----------------------------------------------------------------------------------------------------------
# encode / decode


def add_encode_parser(subparsers) -> argparse.ArgumentParser:
    """`hf-vqvae encode`."""
    parser = _add_subparser(
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
    _add_model_args(parser)
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help=f"Image ({', '.join(IMAGE_EXTENSIONS)}), audio (WAV, FLAC, ...) or video (MP4, GIF, "
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
    from .data import build_preprocessor
    from .data.folders import MEDIA_EXTENSIONS

    extensions = IMAGE_EXTENSIONS if config.modality == "image" else MEDIA_EXTENSIONS[config.modality]
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
    parser = _add_subparser(
        subparsers,
        "decode",
        "Decode code grids back to image, audio or video files.",
        "Decode the code grids `hf-vqvae encode` wrote (or any integer grids (N, *code_shape)) with the "
        "VQ-VAE: one PNG, WAV or GIF/MP4 file per grid, named after the encoded file when it was recorded.",
    )
    _add_model_args(parser)
    parser.add_argument("codes", metavar="CODES", help="A .safetensors (tensor 'codes') or .npy file.")
    parser.add_argument("--output_dir", default="decoded")
    parser.add_argument("--batch_size", type=positive_int, default=16)
    parser.add_argument("--video_format", choices=VIDEO_FORMATS, default="gif")
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
    with torch.no_grad():
        decoded = torch.cat(
            [model.decode(batch.to(model.device)).float().cpu() for batch in codes.split(args.batch_size)]
        )
    stems = output_stems(names, len(decoded))
    paths = [
        write_decoded(output, model.config, Path(args.output_dir) / stem, args.video_format)
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


def write_decoded(output, config: VQVAEConfig, stem: Path, video_format: str) -> Path:
    """Write one postprocessed output (PIL image, audio dict or list of frames) as `stem` + a suffix."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    if config.modality == "image":
        path = stem.with_suffix(".png")
        output.save(path)
        return path
    if config.modality == "audio":
        import soundfile

        path = stem.with_suffix(".wav")
        soundfile.write(path, np.clip(output["audio"], -1, 1).T, output["sampling_rate"], subtype="PCM_16")
        return path
    path = stem.with_suffix(f".{video_format}")
    if video_format == "gif":
        return export_to_gif(output, path, config.fps)
    return export_to_mp4(output, path, config.fps)


# ----------------------------------------------------------------------------------------------------------
# convert


def add_convert_parser(subparsers) -> argparse.ArgumentParser:
    """`hf-vqvae convert`."""
    parser = _add_subparser(
        subparsers,
        "convert",
        "Convert a recording to another speaker's voice.",
        "Encode a whole recording (any length, in chunks) with a VQ-VAE whose decoder has speakers, and decode "
        "its codes with another speaker: what is said stays, the voice changes. The recording is mixed to mono, "
        "resampled to the model's rate (the output is written at that rate) and normalised to the model's level; "
        "the output gets the recording's own level back.",
    )
    _add_model_args(parser)
    parser.add_argument("input", metavar="INPUT", help="An audio file (WAV, FLAC, MP3, ...).")
    parser.add_argument(
        "--speaker", required=True, help="The target speaker: a name or an id of the model's."
    )
    parser.add_argument("--output", required=True, help="The WAV file to write.")
    parser.set_defaults(run=run_convert, user_errors=USER_ERRORS)
    return parser


def run_convert(args: argparse.Namespace) -> None:
    """Read, convert and write one recording; nothing is written when any step fails."""
    from .data.audio import decode_audio, mix_channels, resample
    from .models.vqvae.speakers import speaker_ids_tensor
    from .pipelines.recordings import convert_voice

    output = Path(args.output)
    if output.suffix.lower() != ".wav":
        raise CommandError(f"--output must be a .wav file, got {args.output!r}.")
    check_output_file(args.output, "--output")
    model = load_vqvae(args.model, args.device)
    if model.config.modality != "audio":
        raise CommandError(
            f"{args.model} is a {model.config.modality} model; voice conversion needs an audio one."
        )
    speaker = int(args.speaker) if args.speaker.isdigit() else args.speaker
    speaker_ids_tensor(model.config, speaker, 1)  # an unknown speaker is refused before the file is read
    if not Path(args.input).is_file():
        raise CommandError(f"no such file: {args.input!r}.")
    try:
        waveform, rate = decode_audio(args.input)
    except ValueError as error:
        raise CommandError(f"cannot read {args.input!r}: {error}") from error
    waveform = resample(mix_channels(waveform, model.config.in_channels), rate, model.config.sampling_rate)
    converted = convert_voice(
        model, torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32)), speaker
    )
    import soundfile

    partial = output.with_name(output.name + ".partial")
    output.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(partial, converted.numpy().T, model.config.sampling_rate, subtype="PCM_16", format="WAV")
    partial.replace(output)
    resampled = f", resampled from {rate} Hz" if rate != model.config.sampling_rate else ""
    name = model.config.id2speaker[speaker_ids_tensor(model.config, speaker, 1).item()]
    print(
        f"Converted {args.input} to speaker {name!r}: {output} ({converted.shape[-1] / model.config.sampling_rate:.2f} s "
        f"at {model.config.sampling_rate} Hz{resampled})."
    )


# ----------------------------------------------------------------------------------------------------------
# evaluate


def add_evaluate_parser(subparsers) -> argparse.ArgumentParser:
    """`hf-vqvae evaluate`."""
    parser = _add_subparser(
        subparsers,
        "evaluate",
        "Reconstruction metrics of a VQ-VAE over a whole dataset.",
        "Encode and decode every example of a dataset and report MSE, PSNR, SSIM (images, video) or SNR and "
        "log-mel distance (audio, over whole recordings), and codebook usage, averaged over all examples.",
    )
    _add_model_args(parser)
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
    from .evaluation.reconstruction import evaluate_split  # needs accelerate (train extras)

    source = data_source(args.data)
    if args.output_json:
        check_output_file(args.output_json, "--output_json")  # before the whole evaluation, not after
    model = load_vqvae(args.model, args.device)
    raw = evaluation_split(source, args, model.config)
    results = evaluate_split(model, raw, args.column, args.batch_size, show_progress_bar=True)
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
    from .data import load_raw_dataset, split_train_validation  # needs the train extras

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


# ----------------------------------------------------------------------------------------------------------
# shared helpers


def load_vqvae(name_or_path: str, device: str = "cpu") -> VQVAEModel:
    """The VQ-VAE of a local folder or Hub repo, in eval mode on `device`; errors say what is wrong."""
    local = Path(name_or_path).exists()
    if local and not (Path(name_or_path) / "config.json").is_file():
        raise CommandError(
            f"{name_or_path!r} holds no config.json: a model folder holds config.json and "
            "model.safetensors (e.g. demo_outputs/image, written by `hf-vqvae demo`)."
        )
    if not local and not HUB_REPO_ID.fullmatch(name_or_path):
        raise CommandError(f"no such model folder: {name_or_path!r}.")
    try:
        config = AutoConfig.from_pretrained(name_or_path)
    except OSError as error:
        raise CommandError(
            f"{name_or_path!r} is not a local folder, and loading it from the Hub failed: "
            f"{str(error).splitlines()[0]}"
        ) from error
    if not isinstance(config, VQVAEConfig):
        raise CommandError(
            f"{name_or_path!r} holds a {type(config).__name__}, not a VQ-VAE: pass the folder with "
            "the VQ-VAE at its root (its prior lives in prior/)."
        )
    return VQVAEModel.from_pretrained(name_or_path, config=config).to(device).eval()


def check_output_dir(path: str, flag: str = "--output_dir") -> None:
    """An output folder must be a folder, or not exist yet below folders: say so before any work is done."""
    blocking = next((p for p in (Path(path), *Path(path).parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise CommandError(
            f"{flag} {path!r}: {str(blocking)!r} is a file, not a folder; give a folder to write to."
        )


def check_output_file(path: str, flag: str) -> None:
    """An output file must not be a folder, nor lie below a file: say so before any work is done."""
    if Path(path).is_dir():
        raise CommandError(f"{flag} {path!r} is a folder; give the path of a file to write.")
    blocking = next((p for p in Path(path).parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise CommandError(f"{flag} {path!r}: {str(blocking)!r} is a file, not a folder.")


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table with left-aligned columns."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [header, ["-" * width for width in widths], *rows]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def format_duration(seconds: float) -> str:
    """`83.2` -> `"1 min 23 s"`."""
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


if __name__ == "__main__":
    sys.exit(main())
