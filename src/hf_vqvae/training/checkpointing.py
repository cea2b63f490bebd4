"""Crash-safe Accelerate checkpoints in diffusers' `checkpoint-{step}` layout.

A checkpoint is written under a temporary name and renamed to `checkpoint-{step}` only once every process has
finished writing, so a process killed mid-write never leaves a broken checkpoint that `latest` would pick. Each
checkpoint also holds `save_pretrained` copies of the models, so it loads with `from_pretrained` and the pipeline.

Each script names its checkpoints with its own prefix (`checkpoint-{step}` for the VQ-VAE, `prior-checkpoint-{step}`
for the prior), so a prior trained into its VQ-VAE's folder, the pipeline layout, neither prunes nor resumes from
the VQ-VAE's checkpoints.
"""

import hashlib
import logging
import re
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch
from accelerate import Accelerator
from safetensors import SafetensorError
from safetensors.torch import load_file
from transformers import PreTrainedModel

logger = logging.getLogger(__name__)

DEFAULT_PREFIX = "checkpoint"
PARTIAL_SUFFIX = ".partial"


def list_checkpoints(output_dir: str | Path, prefix: str = DEFAULT_PREFIX) -> list[Path]:
    """Complete `{prefix}-{step}` checkpoints in `output_dir`, oldest first (partial ones, still being written or
    killed, excluded)."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    steps = {path: _step_of(path.name, prefix) for path in output_dir.iterdir() if path.is_dir()}
    return sorted((path for path, step in steps.items() if step is not None), key=steps.get)


def _step_of(name: str, prefix: str) -> int | None:
    match = re.fullmatch(rf"{re.escape(prefix)}-(\d+)", name)
    return int(match.group(1)) if match else None


def checkpoint_step(checkpoint: str | Path, prefix: str = DEFAULT_PREFIX) -> int:
    """The optimisation step a `{prefix}-{step}` folder was written at."""
    step = _step_of(Path(checkpoint).name, prefix)
    if step is None:
        raise ValueError(f"{checkpoint} is not a `{prefix}-{{step}}` folder written by this script.")
    return step


def resolve_resume_checkpoint(
    resume_from_checkpoint: str | None, output_dir: str | Path, prefix: str = DEFAULT_PREFIX
) -> Path | None:
    """Map `--resume_from_checkpoint` (a path, or `latest`) to a checkpoint folder; fail before any training."""
    if resume_from_checkpoint is None:
        return None
    if resume_from_checkpoint == "latest":
        checkpoints = list_checkpoints(output_dir, prefix)
        if not checkpoints:
            raise ValueError(
                f"--resume_from_checkpoint latest: no complete {prefix}-{{step}} folder in {output_dir}. "
                "Drop the flag to start a new run, or pass a checkpoint path."
            )
        return checkpoints[-1]
    path = Path(resume_from_checkpoint)
    if not path.is_dir():
        raise ValueError(f"--resume_from_checkpoint {path}: no such checkpoint folder.")
    checkpoint_step(path, prefix)
    return path


class DamagedCheckpointError(OSError):
    """A checkpoint file that cannot be read back (truncated by a full disk, a killed copy, ...)."""


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


def is_readable(file: Path) -> bool:
    """Whether a checkpoint file reads back in full, checked without unpickling anything: safetensors weights by
    loading them, torch's zip archives (optimizer, scheduler, RNG states) by the CRCs of their members."""
    try:
        if file.suffix == ".safetensors":
            load_file(file)
        elif file.suffix in (".bin", ".pkl", ".pt"):
            with zipfile.ZipFile(file) as archive:
                return archive.testzip() is None
    except (OSError, EOFError, zipfile.BadZipFile, SafetensorError):
        return False
    return True


def damaged_files(checkpoint: Path) -> list[str]:
    """The files of `checkpoint` that cannot be read back in full. Called once loading has failed, to name the
    culprit."""
    return [path.name for path in sorted(checkpoint.iterdir()) if path.is_file() and not is_readable(path)]


def damaged_checkpoint_error(
    checkpoint: Path, damaged: list[str], prefix: str, detail: str
) -> DamagedCheckpointError:
    """The error naming a checkpoint's unreadable files and the previous complete checkpoint to resume from."""
    earlier = [path for path in list_checkpoints(checkpoint.parent, prefix) if path != checkpoint]
    fallback = (
        f"the previous complete checkpoint is {earlier[-1]} (--resume_from_checkpoint {earlier[-1]})"
        if earlier
        else "no earlier checkpoint is kept here"
    )
    return DamagedCheckpointError(
        f"Cannot resume from {checkpoint}: {', '.join(damaged)} cannot be read (damaged or truncated: {detail}); "
        f"{fallback}."
    )


def load_checkpoint(
    accelerator: Accelerator,
    checkpoint: Path | None,
    prefix: str = DEFAULT_PREFIX,
    max_train_steps: int | None = None,
) -> int:
    """Restore the full training state from `checkpoint` (if any); returns the step to continue from.

    Raises:
        ValueError: for a checkpoint past `max_train_steps`, left by a longer run in the same folder (resuming it
            would end at once and save that run's weights as this one's).
        DamagedCheckpointError: naming the checkpoint's unreadable files and the previous complete checkpoint.
    """
    if checkpoint is None:
        return 0
    if max_train_steps is not None and checkpoint_step(checkpoint, prefix) > max_train_steps:
        raise ValueError(
            f"{checkpoint} is at step {checkpoint_step(checkpoint, prefix)}, past --max_train_steps "
            f"{max_train_steps}: a longer run left it in this folder. Resume with --max_train_steps >= its step, "
            "name an earlier checkpoint with --resume_from_checkpoint PATH, or train into another --output_dir."
        )
    # Accelerate only logs (at INFO) RNG states it cannot read and goes on inexactly: check them first.
    unreadable = [
        path.name for path in sorted(checkpoint.glob("random_states_*.pkl")) if not is_readable(path)
    ]
    if unreadable:
        raise damaged_checkpoint_error(checkpoint, unreadable, prefix, "not a complete archive")
    try:
        accelerator.load_state(str(checkpoint))
    except Exception as error:
        damaged = damaged_files(checkpoint)
        if not damaged:
            raise
        detail = f"{type(error).__name__}: {str(error)[:200]}"
        raise damaged_checkpoint_error(checkpoint, damaged, prefix, detail) from error
    step = checkpoint_step(checkpoint, prefix)
    logger.info("Resumed from %s at step %d", checkpoint, step)
    return step


def check_finite_loss(
    accelerator: Accelerator,
    loss: torch.Tensor,
    step: int,
    output_dir: str | Path,
    prefix: str = DEFAULT_PREFIX,
) -> None:
    """Stops the run when the loss of any process is NaN or infinite, before the step's update reaches the
    weights: nothing of the diverged step is saved, and the error names the step and the last checkpoint.

    Raises:
        NonFiniteLossError
    """
    losses = accelerator.gather(loss.detach().float().reshape(1))
    if torch.isfinite(losses).all():
        return
    checkpoints = list_checkpoints(output_dir, prefix)
    finite = [path for path in checkpoints if has_finite_weights(path)]
    if finite:
        last = (
            f"the last checkpoint with finite weights is {finite[-1]} (--resume_from_checkpoint {finite[-1]})"
        )
    else:
        last = "no checkpoint with finite weights had been saved"
    if len(finite) < len(checkpoints):
        spoiled = [path.name for path in checkpoints if path not in finite]
        last += f"; {', '.join(spoiled)} already hold non-finite weights (the run had diverged before)"
    raise NonFiniteLossError(
        f"The training loss became {losses[~torch.isfinite(losses)][0].item()} at step {step}: the run stops before "
        f"that step changes the weights, and nothing of it is saved; {last}. A smaller --learning_rate, "
        "--max_grad_norm, or training without --mixed_precision usually helps."
    )


def has_finite_weights(checkpoint: Path) -> bool:
    """Whether every floating-point tensor of a checkpoint's model weights (`model*.safetensors`) is finite."""
    for file in checkpoint.glob("model*.safetensors"):
        for tensor in load_file(file).values():
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                return False
    return True


def save_checkpoint(
    accelerator: Accelerator,
    output_dir: str | Path,
    step: int,
    total_limit: int | None,
    prefix: str = DEFAULT_PREFIX,
) -> Path:
    """Save the full training state as `output_dir/{prefix}-{step}`; all processes must call this."""
    final = Path(output_dir) / f"{prefix}-{step}"
    partial = final.with_name(final.name + PARTIAL_SUFFIX)
    if accelerator.is_main_process and partial.exists():
        shutil.rmtree(partial)  # left over by a process killed while writing it
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if final.exists():
            shutil.rmtree(final)
        partial.rename(final)
        prune_checkpoints(output_dir, total_limit, prefix, step)
        logger.info("Saved checkpoint %s", final)
        stale = [
            path.name for path in list_checkpoints(output_dir, prefix) if _step_of(path.name, prefix) > step
        ]
        if stale:
            logger.warning(
                "%s hold(s) steps past this run's step %d, from an earlier run in this folder: "
                "`--resume_from_checkpoint latest` would pick them. Remove them, or pass --checkpoints_total_limit.",
                stale,
                step,
            )
    accelerator.wait_for_everyone()
    return final


def prune_checkpoints(
    output_dir: str | Path, total_limit: int | None, prefix: str, current_step: int
) -> None:
    """Keep only `total_limit` complete `{prefix}-{step}` checkpoints (all when None): the one just written at
    `current_step` and the newest before it.

    Checkpoints past `current_step` were left by a run that this one resumed before their step, so they go
    first: kept, `latest` would resume the abandoned run instead of this one.
    """
    if total_limit is None:
        return
    if total_limit < 1:
        raise ValueError(f"checkpoints_total_limit must be >= 1 (or None to keep all), got {total_limit}.")
    checkpoints = list_checkpoints(output_dir, prefix)
    steps = {path: _step_of(path.name, prefix) for path in checkpoints}
    removal_order = sorted(checkpoints, key=lambda path: (steps[path] <= current_step, steps[path]))
    for old in removal_order[: max(0, len(checkpoints) - total_limit)]:
        shutil.rmtree(old)


def state_dict_fingerprint(module: torch.nn.Module) -> str:
    """A short hex key of `module`'s weights and buffers: sha256 over the sorted names and the tensors' bytes.

    Equal keys mean bitwise-equal state dicts, e.g. on every process at the end of a distributed run.

    Args:
        module (`torch.nn.Module`): the model, unwrapped (DDP would prefix every name with `module.`).

    Returns:
        `str`: the first 16 hex characters of the digest.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        # Bytes through a uint8 view, which (unlike `.numpy()`) also works for bfloat16 tensors.
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def register_pretrained_hooks(
    accelerator: Accelerator,
    models: dict[str, PreTrainedModel],
    extra_save: Callable[[Path], None] | None = None,
) -> None:
    """Make `save_state`/`load_state` store each trained model as a `save_pretrained` folder (as diffusers' scripts do).

    Args:
        models: subfolder -> model, in the order they were passed to `accelerator.prepare` ("" = the checkpoint root).
        extra_save: called with the checkpoint folder on the main process, e.g. to add a frozen VQ-VAE beside a prior
            so that the checkpoint is a complete pipeline folder.
    """
    subfolders = list(models)

    def save_hook(prepared_models, weights, output_dir):
        if accelerator.is_main_process:
            for subfolder, model in zip(subfolders, prepared_models, strict=True):
                accelerator.unwrap_model(model).save_pretrained(Path(output_dir) / subfolder)
            if extra_save is not None:
                extra_save(Path(output_dir))
        weights.clear()  # Accelerate would otherwise write the same weights a second time

    def load_hook(prepared_models, input_dir):
        for subfolder in reversed(subfolders):
            model = prepared_models.pop()
            unwrapped = accelerator.unwrap_model(model)
            saved = type(unwrapped).from_pretrained(Path(input_dir) / subfolder)
            unwrapped.load_state_dict(saved.state_dict())

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)


def log_final_fingerprint(accelerator: Accelerator, model: torch.nn.Module) -> None:
    """Log the trained weights' fingerprint. Every rank logs it: equal keys show that all processes ended with
    identical weights."""
    logger.info(
        "final weights fingerprint (process %d/%d): %s",
        accelerator.process_index,
        accelerator.num_processes,
        state_dict_fingerprint(accelerator.unwrap_model(model)),
    )
