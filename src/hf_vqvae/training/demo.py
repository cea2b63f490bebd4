"""The offline demo: a small VQ-VAE and prior per modality, trained on built-in datasets on a CPU in minutes.

For each modality the demo runs the library's training scripts, exactly as a user would
(`python -m hf_vqvae.training.train_vqvae`, then `python -m hf_vqvae.training.train_prior` into the same folder), and
leaves a hub-ready folder:

    demo_outputs/image/   config.json, model.safetensors, prior/, README.md, samples/ (PNG grids)
    demo_outputs/audio/   ... samples/ (WAV files)
    demo_outputs/video/   ... samples/ (GIF files)

each of which loads with `pipeline("vq-sample", model="demo_outputs/image")`. It needs the training extras
(`pip install "hf_vqvae[train]"`), not a source checkout.
"""

import dataclasses
import importlib
import json
import logging
import shlex
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import torch

from .history import last_evaluation


class DemoUnavailableError(RuntimeError):
    """The demo cannot run here: the training extras are missing."""


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How the demo trains one modality: the data, the sizes of the two models, and the training steps."""

    dataset: str
    num_examples: int
    vqvae_config: str  # `--config_overrides` of train_vqvae.py
    vqvae_steps: int
    vqvae_batch_size: int
    prior_steps: int
    prior_batch_size: int
    prior_hidden_size: int = 64
    prior_num_layers: int = 2
    prior_num_heads: int = 4
    learning_rate: float = 2e-3


# Tiny models that still reconstruct visibly well within the time budget (README: under 10 minutes on 2 CPU
# cores). ema_decay=0.9 (not 0.99) lets the EMA codebook and the dead-code restarts keep up with an encoder
# that changes fast over so few steps.
_CODEBOOK = "codebook_size=128,embedding_dim=16,ema_decay=0.9,hidden_channels=32,residual_channels=16"
RECIPES = {
    "image": Recipe(
        "builtin:shapes",
        2000,
        f"{_CODEBOOK},sample_size=32,downsample_factors=4",
        vqvae_steps=1500,
        vqvae_batch_size=32,
        prior_steps=600,
        prior_batch_size=32,
    ),
    "audio": Recipe(
        "builtin:tones",
        1000,
        f"{_CODEBOOK},sampling_rate=8000,sample_size=4096,downsample_factors=16",
        vqvae_steps=800,
        vqvae_batch_size=32,
        prior_steps=400,
        prior_batch_size=16,
    ),
    "video": Recipe(
        "builtin:sprites",
        512,
        f"{_CODEBOOK},sample_size=[8,32,32],downsample_factors=[2,4,4]",
        vqvae_steps=1500,
        vqvae_batch_size=8,
        prior_steps=400,
        prior_batch_size=16,
    ),
}
# `--quick`: the same pipeline on tiny data for a few steps, to check that everything runs.
QUICK = {
    "num_examples": 64,
    "vqvae_steps": 20,
    "vqvae_batch_size": 8,
    "prior_steps": 10,
    "prior_batch_size": 8,
}


@dataclasses.dataclass
class DemoResult:
    """What the demo produced for one modality."""

    modality: str
    output_dir: Path
    metrics: dict[str, float]  # final validation metrics of the VQ-VAE and the prior
    codebook_size: int
    seconds: float


def run_demo(
    output_dir: str | Path, modalities: list[str], quick: bool = False, num_threads: int = 1
) -> list[DemoResult]:
    """Train and save a VQ-VAE and a prior for each modality, one after the other; returns what each measured.

    Also writes `output_dir/summary.json`.
    """
    scripts = load_training_script("train_vqvae"), load_training_script("train_prior")
    # The training scripts log every step at INFO; the progress bars and the final summary are enough here.
    logging.basicConfig(level=logging.WARNING)
    results = []
    with torch_threads(num_threads):
        for index, modality in enumerate(modalities, 1):
            recipe = dataclasses.replace(RECIPES[modality], **QUICK) if quick else RECIPES[modality]
            folder = Path(output_dir) / modality
            print(
                f"\n[{index}/{len(modalities)}] {modality}: a VQ-VAE on {recipe.dataset} "
                f"({recipe.vqvae_steps} steps), then a transformer prior over its codes "
                f"({recipe.prior_steps} steps) -> {folder}"
            )
            results.append(train_modality(modality, recipe, folder, *scripts))
    write_summary(Path(output_dir) / "summary.json", results)
    return results


def train_modality(
    modality: str, recipe: Recipe, folder: Path, train_vqvae: ModuleType, train_prior: ModuleType
) -> DemoResult:
    """train_vqvae.py, then train_prior.py into the same folder."""
    start = time.perf_counter()
    vqvae_argv, prior_argv = vqvae_arguments(modality, recipe, folder), prior_arguments(recipe, folder)
    vqvae_command = [*script_command(train_vqvae), *map(shlex.quote, vqvae_argv)]
    run_script(train_vqvae, vqvae_argv, shown_as=vqvae_command)
    # train_prior.py writes the folder's model card; its training command should retrain the pair.
    prior_command = [*script_command(train_prior), *map(shlex.quote, prior_argv)]
    run_script(train_prior, prior_argv, shown_as=[*vqvae_command, "&&", "python", *prior_command])
    seconds = time.perf_counter() - start
    return DemoResult(modality, folder, final_metrics(folder), codebook_size(folder), seconds)


def vqvae_arguments(modality: str, recipe: Recipe, output_dir: Path) -> list[str]:
    """train_vqvae.py's command line: validation and the hub-ready folder at the end, no checkpoints."""
    return command_line(
        dataset_name=recipe.dataset,
        builtin_num_examples=recipe.num_examples,
        modality=modality,
        config_overrides=recipe.vqvae_config,
        num_validation_samples=8,
        **_training_flags(output_dir, recipe.vqvae_steps, recipe.vqvae_batch_size, recipe.learning_rate),
    )


def prior_arguments(recipe: Recipe, output_dir: Path) -> list[str]:
    """train_prior.py's command line: a class-conditional transformer prior, saved beside the VQ-VAE."""
    return command_line(
        vqvae_name_or_path=output_dir,
        dataset_name=recipe.dataset,
        builtin_num_examples=recipe.num_examples,
        label_column="label",
        prior_type="transformer",
        hidden_size=recipe.prior_hidden_size,
        num_layers=recipe.prior_num_layers,
        num_heads=recipe.prior_num_heads,
        num_validation_samples=16,
        **_training_flags(output_dir, recipe.prior_steps, recipe.prior_batch_size, recipe.learning_rate / 2),
    )


def _training_flags(output_dir: Path, steps: int, batch_size: int, learning_rate: float) -> dict:
    # Validation and checkpoints fall due after the last step, i.e. never: the scripts validate at the end.
    return {
        "output_dir": output_dir,
        "max_train_steps": steps,
        "train_batch_size": batch_size,
        "learning_rate": learning_rate,
        "validation_steps": steps + 1,
        "checkpointing_steps": steps + 1,
        "mixed_precision": "no",
        "report_to": "none",
        "seed": 0,
    }


def command_line(**flags) -> list[str]:
    """`command_line(max_train_steps=10)` -> `["--max_train_steps", "10"]`."""
    return [item for flag, value in flags.items() for item in (f"--{flag}", str(value))]


def load_training_script(name: str) -> ModuleType:
    """Import `hf_vqvae.training.{name}`, which needs the training extras."""
    try:
        return importlib.import_module(f"hf_vqvae.training.{name}")
    except ImportError as error:
        raise DemoUnavailableError(
            f'The demo needs the training extras ({error}): pip install "hf_vqvae[train]"'
        ) from error


def script_command(script: ModuleType) -> list[str]:
    """How a shell runs `script` (after `python`)."""
    return ["-m", script.__name__]


def run_script(script: ModuleType, argv: list[str], shown_as: list[str]) -> None:
    """Run a training script's `main(argv)` with `sys.argv` set to `shown_as`, the shell command (after
    `python`) that the model card records as the training command."""
    saved = sys.argv
    sys.argv = shown_as
    try:
        script.main(argv)
    finally:
        sys.argv = saved


@contextmanager
def torch_threads(num_threads: int):
    """Use `num_threads` torch CPU threads inside the block."""
    saved = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def final_metrics(folder: Path) -> dict[str, float]:
    """The final validation of the VQ-VAE and of the prior, read from the histories the scripts wrote."""
    return last_evaluation(folder / "training_history.jsonl") | last_evaluation(
        folder / "prior_training_history.jsonl"
    )


def codebook_size(folder: Path) -> int:
    return json.loads((folder / "config.json").read_text())["codebook_size"]


def write_summary(path: Path, results: list[DemoResult]) -> None:
    summary = {
        result.modality: {
            "output_dir": str(result.output_dir),
            "seconds": round(result.seconds, 1),
            "metrics": result.metrics,
        }
        for result in results
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2))
