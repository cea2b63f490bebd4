"""Shared parts of the `hf-vqvae` commands: loading the VQ-VAE, checking output paths, the user errors that end a command with one line, and table formatting."""

import argparse
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from transformers import AutoConfig

from ..models.vqvae.configuration_vqvae import VQVAEConfig
from ..models.vqvae.modeling_vqvae import VQVAEModel

# What a Hub repo id looks like ("name" or "org/name"); anything else that does not exist is a mistyped path.
HUB_REPO_ID = re.compile(r"[\w][\w.-]*(/[\w][\w.-]*)?")


class CommandError(Exception):
    """A mistake in what the user gave; `main` reports it as one line and exits with status 2."""


# Errors that mean "bad input" rather than "bug": the library raises ValueError for inputs it cannot use
# (wrong shapes, out-of-range codes, undecodable files), and loading raises OSError for missing files.
USER_ERRORS = (CommandError, ValueError, OSError, SafetensorError)


def add_model_args(parser: argparse.ArgumentParser) -> None:
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


def add_subparser(
    subparsers, name: str, help_text: str, description: str, preformatted: bool = False
) -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter if preformatted else argparse.HelpFormatter
    return subparsers.add_parser(name, help=help_text, description=description, formatter_class=formatter)


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
