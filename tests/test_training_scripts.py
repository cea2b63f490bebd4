"""End-to-end tests of examples/train_vqvae.py and examples/train_prior.py.

Real 2-process CPU runs (Accelerate's MULTI_CPU over gloo), a run killed with SIGKILL and resumed to the exact
same per-step history, a checkpoint killed mid-write never being resumed from, checkpoints that load with
`from_pretrained` and the "vq-sample" pipeline, and bad input failing with a clear error before training.

Training runs are subprocesses with one thread each (bitwise-repeatable, and two of them can share 2 cores);
bad-input runs call the scripts' `main(argv)` in-process, as they fail before any training.
"""

import argparse
import itertools
import json
import logging
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import datasets
import numpy as np
import PIL.Image
import pytest
import torch
from accelerate import Accelerator
from conftest import EXAMPLES, SHARED_DATA, load_script
from datasets import ClassLabel, Dataset, Features
from datasets import Image as ImageFeature
from transformers import AutoModel, get_scheduler, pipeline

import hf_vqvae  # noqa: F401  (registers the Auto classes and the "vq-sample" task)
from hf_vqvae import VQPriorConfig, VQVAEConfig, VQVAEModel
from hf_vqvae.data import decode_video, load_raw_dataset
from hf_vqvae.models.prior.modeling_prior import VQPriorModel
from hf_vqvae.models.prior.surgery import added_layer_positions
from hf_vqvae.models.remote_code import code_files
from hf_vqvae.pipelines.remote_pipeline import REMOTE_TASK
from hf_vqvae.pipelines.vq_sample import VQSamplePipeline
from hf_vqvae.training import augmentation, prior_arguments
from hf_vqvae.training import prior_codes as prior_code_grids
from hf_vqvae.training import train_vqvae as train_vqvae_module
from hf_vqvae.training.arguments import launch_command
from hf_vqvae.training.checkpointing import (
    list_checkpoints,
    prune_checkpoints,
    resolve_resume_checkpoint,
    state_dict_fingerprint,
)
from hf_vqvae.training.config_overrides import apply_config_overrides, parse_config_overrides
from hf_vqvae.training.resumable_data import resumable_batches

TRAIN_VQVAE, TRAIN_PRIOR = EXAMPLES / "train_vqvae.py", EXAMPLES / "train_prior.py"
CIFAR10 = SHARED_DATA / "cifar10" / "train.parquet"

TINY_VQVAE = ["--config_overrides", "hidden_channels=16,residual_channels=8,codebook_size=32,embedding_dim=8"]
TINY_PRIOR = ["--hidden_size", "32", "--num_layers", "2", "--num_heads", "2"]
QUIET = ["--report_to", "none", "--num_validation_samples", "2"]
# 320 training examples + 16 held out (every 20th row).
SHAPES = ["--dataset_name", "builtin:shapes", "--builtin_num_examples", "336"]

COMPLETE_CHECKPOINT = re.compile(r"(prior-)?checkpoint-\d+")
FINGERPRINT_LINE = re.compile(r"final weights fingerprint \(process (\d+)/(\d+)\): ([0-9a-f]{16})")
RESUMED_LINE = re.compile(r"Resumed from (\S+) at step (\d+)")
RUN_TIMEOUT_S = 300


def tiny_vqvae_config() -> VQVAEConfig:
    return VQVAEConfig(hidden_channels=16, residual_channels=8, codebook_size=32, embedding_dim=8)


def image_data_args() -> list[str]:
    """The real CIFAR-10 parquet (320 train / 32 held-out images) when present, else the built-in shapes."""
    if CIFAR10.exists():
        return [
            "--data_files",
            str(CIFAR10),
            "--image_column",
            "img",
            "--max_train_samples",
            "320",
            "--max_eval_samples",
            "32",
        ]
    return SHAPES


# ------------------------------------------------------------------------------------------- running scripts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def script_env() -> dict[str, str]:
    # One thread per process: bitwise-repeatable runs that share the cores without oversubscribing them.
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "ACCELERATE_USE_CPU": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }


def script_command(script: Path, args: list[str], num_processes: int = 1) -> list[str]:
    if num_processes == 1:
        return [sys.executable, str(script), *args]
    launch = [
        "--multi_gpu",
        "--num_processes",
        str(num_processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
    ]
    return [sys.executable, "-m", "accelerate.commands.launch", *launch, str(script), *args]


def start_script(script: Path, args: list[str], log_file: Path, num_processes: int = 1) -> subprocess.Popen:
    """Start a training script in the background, its stdout and stderr going to `log_file`."""
    with log_file.open("w") as log:
        return subprocess.Popen(
            script_command(script, args, num_processes),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=script_env(),
        )


def wait_for_success(process: subprocess.Popen, log_file: Path) -> str:
    """Wait for a started script and return its log; fail the test, showing the log, on a non-zero exit."""
    try:
        process.wait(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log = log_file.read_text()
    command = " ".join(map(str, process.args))
    assert process.returncode == 0, f"{command} exited {process.returncode}:\n{log[-6000:]}"
    return log


def run_script(script: Path, args: list[str], log_file: Path, num_processes: int = 1) -> str:
    return wait_for_success(start_script(script, args, log_file, num_processes), log_file)


def kill_after_first_checkpoint(process: subprocess.Popen, output_dir: Path, log_file: Path) -> None:
    """SIGKILL `process` as soon as a complete `checkpoint-{step}` (or `prior-checkpoint-{step}`) folder appears in
    `output_dir`."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not any(COMPLETE_CHECKPOINT.fullmatch(p.name) for p in output_dir.glob("*checkpoint-*")):
        if process.poll() is not None:
            pytest.fail(
                f"the run ended (exit {process.returncode}) before its first checkpoint:\n"
                f"{log_file.read_text()[-6000:]}"
            )
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("no checkpoint appeared in time")
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"


# --------------------------------------------------------------------------------------- reading the results


def read_history(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def losses_by_step(history: list[dict]) -> dict[int, float]:
    return {record["step"]: record["loss"] for record in history if "loss" in record}


def assert_loss_decreased(history_file: Path, window: int, max_ratio: float) -> None:
    losses = list(losses_by_step(read_history(history_file)).values())
    early, late = statistics.mean(losses[:window]), statistics.mean(losses[-window:])
    assert late < max_ratio * early, f"mean loss of the first {window} steps {early:.4f}, last {late:.4f}"


def logged_fingerprints(log: str) -> dict[int, str]:
    """Process index -> the final weights fingerprint it logged; checks they all name the same world size."""
    found = FINGERPRINT_LINE.findall(log)
    assert found, "no final weights fingerprint was logged"
    assert {int(world) for _, world, _ in found} == {len({index for index, _, _ in found})}
    return {int(index): fingerprint for index, _, fingerprint in found}


def assert_ran_on_processes(log: str, num_processes: int) -> None:
    assert re.findall(r"processes: (\d+) \|", log) == [str(num_processes)] * num_processes
    assert sorted(logged_fingerprints(log)) == list(range(num_processes))


def assert_pipeline_samples(folder: Path, num_samples: int = 2) -> VQSamplePipeline:
    """`folder` loads as a "vq-sample" pipeline that returns `num_samples` images; returns the pipeline."""
    pipe = pipeline("vq-sample", model=str(folder))
    images = pipe(num_samples=num_samples, class_labels=list(range(num_samples)), seed=0)
    assert len(images) == num_samples
    assert all(isinstance(image, PIL.Image.Image) and image.size == (32, 32) for image in images)
    return pipe


# -------------------------------------------------------------------------------------------- 2-process runs


@pytest.fixture(scope="module")
def two_process_vqvae(tmp_path_factory) -> tuple[Path, str]:
    """A 2-process VQ-VAE run (60 steps, checkpoints at 30 and 60): its output folder and log."""
    output_dir = tmp_path_factory.mktemp("vqvae_2proc") / "out"
    args = [
        *image_data_args(),
        *TINY_VQVAE,
        *QUIET,
        "--output_dir",
        str(output_dir),
        "--max_train_steps",
        "60",
        "--train_batch_size",
        "16",
        "--learning_rate",
        "3e-3",
        "--checkpointing_steps",
        "30",
    ]
    return output_dir, run_script(TRAIN_VQVAE, args, output_dir.parent / "log.txt", num_processes=2)


@pytest.fixture(scope="module")
def two_process_prior(two_process_vqvae, tmp_path_factory) -> tuple[Path, str]:
    """A 2-process class-conditional prior run (40 steps, checkpoints at 20 and 40) over those codes."""
    vqvae_dir, _ = two_process_vqvae
    work = tmp_path_factory.mktemp("prior_2proc")
    output_dir = work / "out"
    args = [
        *image_data_args(),
        "--label_column",
        "label",
        *TINY_PRIOR,
        *QUIET,
        "--vqvae_name_or_path",
        str(vqvae_dir),
        "--output_dir",
        str(output_dir),
        "--codes_cache_dir",
        str(work / "codes"),
        "--max_train_steps",
        "40",
        "--train_batch_size",
        "16",
        "--learning_rate",
        "3e-3",
        "--lr_scheduler",
        "cosine",
        "--lr_warmup_steps",
        "4",
        "--checkpointing_steps",
        "20",
    ]
    return output_dir, run_script(TRAIN_PRIOR, args, work / "log.txt", num_processes=2)


@pytest.mark.slow
def test_vqvae_two_processes_train_to_identical_weights(two_process_vqvae):
    output_dir, log = two_process_vqvae
    assert_ran_on_processes(log, 2)
    assert_loss_decreased(output_dir / "training_history.jsonl", window=10, max_ratio=0.85)
    fingerprints = logged_fingerprints(log)
    assert fingerprints[0] == fingerprints[1]
    model = VQVAEModel.from_pretrained(output_dir)
    assert state_dict_fingerprint(model) == fingerprints[0]  # what was saved is what both ranks hold
    assert type(AutoModel.from_pretrained(output_dir)) is VQVAEModel


@pytest.mark.slow
def test_vqvae_checkpoint_root_loads_with_from_pretrained(two_process_vqvae):
    output_dir, log = two_process_vqvae
    assert [p.name for p in list_checkpoints(output_dir)] == ["checkpoint-30", "checkpoint-60"]
    final = logged_fingerprints(log)[0]
    last, halfway = (VQVAEModel.from_pretrained(output_dir / f"checkpoint-{step}") for step in (60, 30))
    assert state_dict_fingerprint(last) == final
    assert state_dict_fingerprint(halfway) != final


@pytest.mark.slow
def test_prior_two_processes_train_to_identical_weights(two_process_prior):
    output_dir, log = two_process_prior
    assert_ran_on_processes(log, 2)
    assert_loss_decreased(output_dir / "prior_training_history.jsonl", window=10, max_ratio=0.8)
    fingerprints = logged_fingerprints(log)
    assert fingerprints[0] == fingerprints[1]
    assert type(AutoModel.from_pretrained(output_dir / "prior")) is VQPriorModel
    pipe = assert_pipeline_samples(output_dir)
    assert state_dict_fingerprint(pipe.prior) == fingerprints[0]


@pytest.mark.slow
def test_two_processes_follow_the_one_process_learning_rate_schedule(two_process_prior):
    output_dir, _ = two_process_prior
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=3e-3)
    scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=4, num_training_steps=40)
    expected = []
    for _ in range(40):
        optimizer.step()
        scheduler.step()
        expected.append(scheduler.get_last_lr()[0])
    logged = [r["lr"] for r in read_history(output_dir / "prior_training_history.jsonl") if "lr" in r]
    assert logged == pytest.approx(expected)


@pytest.mark.slow
def test_prior_checkpoint_works_with_the_pipeline(two_process_prior, two_process_vqvae):
    output_dir, log = two_process_prior
    pipe = assert_pipeline_samples(output_dir / "prior-checkpoint-20")
    assert state_dict_fingerprint(pipe.prior) != logged_fingerprints(log)[0]  # halfway, not the final prior
    # The checkpoint is a whole pipeline folder: the frozen VQ-VAE it was trained over sits at its root.
    vqvae = VQVAEModel.from_pretrained(two_process_vqvae[0])
    assert state_dict_fingerprint(pipe.model) == state_dict_fingerprint(vqvae)


# ---------------------------------------------------------------------------------------- SIGKILL and resume


def run_killed_and_resumed(
    script: Path, args_for: Callable[[Path], list[str]], work: Path, history_name: str
) -> dict:
    """Run `script` uninterrupted and, alongside, a copy that is SIGKILLed after its first checkpoint, then
    resumed with `--resume_from_checkpoint latest`; returns both runs' folders, logs and histories.

    Args:
        args_for: the script's arguments for a run writing to the given output folder.
    """
    reference_dir, resumed_dir = work / "reference", work / "resumed"
    reference = start_script(script, args_for(reference_dir), work / "reference.txt")
    victim = start_script(script, args_for(resumed_dir), work / "killed.txt")
    kill_after_first_checkpoint(victim, resumed_dir, work / "killed.txt")
    reference_log = wait_for_success(reference, work / "reference.txt")
    assert not (resumed_dir / "config.json").exists()  # the killed run never reached its final save
    resume_args = [*args_for(resumed_dir), "--resume_from_checkpoint", "latest"]
    resumed_log = run_script(script, resume_args, work / "resumed.txt")
    return {
        "reference_dir": reference_dir,
        "resumed_dir": resumed_dir,
        "reference_log": reference_log,
        "resumed_log": resumed_log,
        "reference_history": read_history(reference_dir / history_name),
        "resumed_history": read_history(resumed_dir / history_name),
    }


def assert_resumed_run_matches_reference(runs: dict, max_train_steps: int, first_checkpoint: int) -> None:
    ((checkpoint, step),) = RESUMED_LINE.findall(runs["resumed_log"])
    assert Path(checkpoint).parent == runs["resumed_dir"]
    assert first_checkpoint <= int(step) < max_train_steps  # resumed from a checkpoint, with steps left
    reference, resumed = runs["reference_history"], runs["resumed_history"]
    reference_losses, resumed_losses = losses_by_step(reference), losses_by_step(resumed)
    assert list(resumed_losses) == list(range(1, max_train_steps + 1))
    differing = [step for step in resumed_losses if resumed_losses[step] != reference_losses[step]]
    assert not differing, f"losses differ from step {differing[0]}: {resumed_losses} vs {reference_losses}"
    # Every other logged value (loss terms, lr, epoch, validation metrics) equal too, bit for bit.
    assert resumed == reference
    assert logged_fingerprints(runs["resumed_log"]) == logged_fingerprints(runs["reference_log"])


# 304 training examples: 19 batches an epoch, an odd number, so with 2 accumulated batches per step an epoch
# is 10 steps, the last of a single batch. The first checkpoint, at step 12, lies in the second epoch.
RESUME_SHAPES = ["--dataset_name", "builtin:shapes", "--builtin_num_examples", "320"]
VQVAE_RESUME_ARGS = [
    *RESUME_SHAPES,
    *TINY_VQVAE,
    *QUIET,
    "--max_train_steps",
    "24",
    "--train_batch_size",
    "16",
    "--gradient_accumulation_steps",
    "2",
    "--learning_rate",
    "2e-3",
    "--checkpointing_steps",
    "12",
    "--validation_steps",
    "6",
]


@pytest.fixture(scope="module")
def vqvae_killed_and_resumed(tmp_path_factory) -> dict:
    def args_for(output_dir: Path) -> list[str]:
        return [*VQVAE_RESUME_ARGS, "--output_dir", str(output_dir)]

    return run_killed_and_resumed(
        TRAIN_VQVAE, args_for, tmp_path_factory.mktemp("vqvae_resume"), "training_history.jsonl"
    )


@pytest.mark.slow
def test_vqvae_resumed_after_sigkill_repeats_the_uninterrupted_run(vqvae_killed_and_resumed):
    assert_resumed_run_matches_reference(vqvae_killed_and_resumed, max_train_steps=24, first_checkpoint=12)


@pytest.mark.slow
def test_prior_resumed_after_sigkill_repeats_the_uninterrupted_run(vqvae_killed_and_resumed, tmp_path):
    # 30 steps over 19-batch epochs, a checkpoint every 21: resumed 2 steps into the second epoch.
    vqvae_dir = vqvae_killed_and_resumed["reference_dir"]
    args = [
        *RESUME_SHAPES,
        "--label_column",
        "label",
        *TINY_PRIOR,
        *QUIET,
        "--vqvae_name_or_path",
        str(vqvae_dir),
        "--max_train_steps",
        "30",
        "--train_batch_size",
        "16",
        "--learning_rate",
        "3e-3",
        "--checkpointing_steps",
        "21",
        "--validation_steps",
        "10",
    ]

    def args_for(output_dir: Path) -> list[str]:
        # A code cache per run (two runs must not write one at once); the resumed run reuses the killed one's.
        cache_dir = output_dir.with_name(f"{output_dir.name}_codes")
        return [*args, "--output_dir", str(output_dir), "--codes_cache_dir", str(cache_dir)]

    runs = run_killed_and_resumed(TRAIN_PRIOR, args_for, tmp_path, "prior_training_history.jsonl")
    assert "Reusing cached codes" in runs["resumed_log"]
    assert_resumed_run_matches_reference(runs, max_train_steps=30, first_checkpoint=21)


@pytest.mark.slow
def test_checkpoint_killed_mid_write_is_not_resumed_from(vqvae_killed_and_resumed, tmp_path, caplog):
    reference_dir = vqvae_killed_and_resumed["reference_dir"]
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    shutil.copytree(reference_dir / "checkpoint-12", output_dir / "checkpoint-12")
    # A newer checkpoint whose writer was killed: still under its temporary name, weights, optimizer missing.
    shutil.copytree(
        reference_dir / "checkpoint-24",
        output_dir / "checkpoint-24.partial",
        ignore=shutil.ignore_patterns("*.safetensors", "optimizer.bin"),
    )
    argv = [
        *VQVAE_RESUME_ARGS,
        "--output_dir",
        str(output_dir),
        "--max_train_steps",
        "13",
        "--resume_from_checkpoint",
        "latest",
    ]
    with caplog.at_level(logging.INFO):
        load_script(TRAIN_VQVAE).main(argv)
    assert f"Resumed from {output_dir / 'checkpoint-12'} at step 12" in caplog.text
    # One training step (13) and the final validation, logged at that step.
    assert [record["step"] for record in read_history(output_dir / "training_history.jsonl")] == [13, 13]


def test_checkpoint_listing_resolution_and_pruning(tmp_path):
    names = ("checkpoint-2", "checkpoint-10", "checkpoint-1", "checkpoint-30.partial", "logs", "checkpoint-x")
    for name in names:
        (tmp_path / name).mkdir()
    (tmp_path / "checkpoint-40").touch()  # a file, not a checkpoint folder
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-1", "checkpoint-2", "checkpoint-10"]
    assert list_checkpoints(tmp_path / "missing") == []

    assert resolve_resume_checkpoint(None, tmp_path) is None
    assert resolve_resume_checkpoint("latest", tmp_path) == tmp_path / "checkpoint-10"  # numeric, not by name
    assert resolve_resume_checkpoint(str(tmp_path / "checkpoint-2"), tmp_path) == tmp_path / "checkpoint-2"
    with pytest.raises(ValueError, match="no such checkpoint folder"):
        resolve_resume_checkpoint(str(tmp_path / "checkpoint-3"), tmp_path)
    with pytest.raises(ValueError, match=r"is not a `checkpoint-\{step\}` folder"):
        resolve_resume_checkpoint(str(tmp_path / "checkpoint-30.partial"), tmp_path)

    prune_checkpoints(tmp_path, None, "checkpoint", 10)
    assert len(list_checkpoints(tmp_path)) == 3
    prune_checkpoints(tmp_path, 2, "checkpoint", 10)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-2", "checkpoint-10"]
    assert (tmp_path / "checkpoint-30.partial").is_dir()  # pruning never touches what it does not list
    with pytest.raises(ValueError, match="must be >= 1"):
        prune_checkpoints(tmp_path, 0, "checkpoint", 10)
    # A run resumed from checkpoint-2 has just written checkpoint-3: checkpoint-10 is from the abandoned run.
    (tmp_path / "checkpoint-3").mkdir()
    prune_checkpoints(tmp_path, 2, "checkpoint", 3)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-2", "checkpoint-3"]

    only_partial = tmp_path / "only_partial"
    (only_partial / "checkpoint-5.partial").mkdir(parents=True)
    with pytest.raises(ValueError, match="no complete checkpoint"):
        resolve_resume_checkpoint("latest", only_partial)


def test_prior_checkpoints_leave_the_vqvae_checkpoints_in_the_same_folder_alone(tmp_path):
    # train_prior.py writes into its VQ-VAE's folder (the pipeline layout), beside train_vqvae.py's checkpoints.
    for name in ("checkpoint-8000", "checkpoint-9000", "prior-checkpoint-300", "prior-checkpoint-600"):
        (tmp_path / name).mkdir()
    prefix = "prior-checkpoint"
    assert [p.name for p in list_checkpoints(tmp_path, prefix)] == [
        "prior-checkpoint-300",
        "prior-checkpoint-600",
    ]
    assert resolve_resume_checkpoint("latest", tmp_path, prefix) == tmp_path / "prior-checkpoint-600"
    with pytest.raises(ValueError, match=r"is not a `prior-checkpoint-\{step\}` folder"):
        resolve_resume_checkpoint(str(tmp_path / "checkpoint-9000"), tmp_path, prefix)
    prune_checkpoints(tmp_path, 1, prefix, 600)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint-8000",
        "checkpoint-9000",
        "prior-checkpoint-600",
    ]


class FakeStream:
    """A streaming loader (no length) of 5 batches per epoch, each `(epoch, index)` with a draw of torch's RNG, as
    random preprocessing would make."""

    def __init__(self):
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        for index in range(5):
            yield {"position": (self.epoch, index), "draw": torch.rand(()).item()}


@pytest.mark.parametrize("global_step", [0, 2, 3, 4, 7])
def test_a_streaming_run_resumes_where_the_uninterrupted_run_was_past_its_first_pass(global_step):
    # 2 batches per step, 5 per epoch: each epoch is 3 steps, the last of them on one batch.
    torch.manual_seed(0)
    uninterrupted = list(itertools.islice(resumable_batches(FakeStream(), None, 0, 2), 40))
    steps_done = [0]
    for (epoch, _, batch), (next_epoch, _, _) in itertools.pairwise(uninterrupted):
        in_epoch = batch["position"][1] + 1
        steps_done.append(steps_done[-1] + (in_epoch % 2 == 0 or next_epoch != epoch))
    start = steps_done.index(global_step)
    torch.manual_seed(1)
    resumed = list(itertools.islice(resumable_batches(FakeStream(), None, global_step, 2), 3))
    assert [(e, n, b["position"]) for e, n, b in resumed] == [
        (e, n, b["position"]) for e, n, b in uninterrupted[start : start + 3]
    ]
    torch.manual_seed(1)
    assert resumed[0][2]["draw"] == torch.rand(()).item()  # the skipped batches' draws were put back


def test_state_dict_fingerprint_tracks_every_tensor():
    model = VQVAEModel(tiny_vqvae_config())
    key = state_dict_fingerprint(model)
    assert re.fullmatch(r"[0-9a-f]{16}", key)
    assert state_dict_fingerprint(VQVAEModel(model.config)) != key  # other random weights
    copy = VQVAEModel(model.config)
    copy.load_state_dict(model.state_dict())
    assert state_dict_fingerprint(copy) == key
    with torch.no_grad():
        copy.quantizer.cluster_size[0] += 1  # a buffer, not a parameter
    assert state_dict_fingerprint(copy) != key


# -------------------------------------------------------------------------- bad input: clear errors up front


@pytest.fixture(scope="module")
def untrained_vqvae_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("untrained_vqvae")
    VQVAEModel(tiny_vqvae_config()).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def empty_parquet(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("empty") / "empty.parquet"
    features = Features({"image": ImageFeature(), "label": ClassLabel(names=["a", "b"])})
    Dataset.from_dict({"image": [], "label": []}, features=features).to_parquet(str(path))
    return path


@pytest.fixture(scope="module")
def two_class_parquet(tmp_path_factory) -> Path:
    """Two 32x32 images whose label column names other classes than the built-in shapes'."""
    path = tmp_path_factory.mktemp("two_class") / "two_class.parquet"
    features = Features({"image": ImageFeature(), "label": ClassLabel(names=["a", "b"])})
    images = [PIL.Image.new("RGB", (32, 32), colour) for colour in ("red", "blue")]
    Dataset.from_dict({"image": images, "label": [0, 1]}, features=features).to_parquet(str(path))
    return path


SMALL_SHAPES = ["--dataset_name", "builtin:shapes", "--builtin_num_examples", "40"]
EMPTY_PARQUET = "<the empty_parquet fixture>"
TWO_CLASS_PARQUET = "<the two_class_parquet fixture>"
BAD_VQVAE_INPUTS = {
    "unknown_column": (
        [*SMALL_SHAPES, "--image_column", "nope"],
        r"Column 'nope' not found.*\['image', 'label'\]",
    ),
    "audio_model_on_images": (
        [*SMALL_SHAPES, "--modality", "audio"],
        r"holds the audio data.*\{'image': 'image'\}.*The data is \['image'\]",
    ),
    "unknown_config_field": (
        [*SMALL_SHAPES, "--config_overrides", "hidden_channels=16,codebook_sise=32"],
        r"\['codebook_sise'\] are not fields of VQVAEConfig.*'codebook_size'",
    ),
    "empty_dataset": (
        ["--data_files", EMPTY_PARQUET],
        r"empty\.parquet.*no examples \(the dataset is empty\)",
    ),
    "batch_larger_than_data": (
        [*SMALL_SHAPES, "--train_batch_size", "64"],
        r"makes no full batch: 38 examples per epoch, fewer than --train_batch_size \(64\)",
    ),
    "resume_without_checkpoint": (
        [*SMALL_SHAPES, "--resume_from_checkpoint", "latest"],
        r"--resume_from_checkpoint latest: no complete checkpoint",
    ),
}
BAD_PRIOR_INPUTS = {
    "unknown_column": ([*SMALL_SHAPES, "--image_column", "nope"], r"Column 'nope' not found"),
    "unknown_label_column": ([*SMALL_SHAPES, "--label_column", "labels"], r"Label column 'labels' not found"),
    "validation_classes_differ": (
        [*SMALL_SHAPES, "--label_column", "label", "--validation_data_files", TWO_CLASS_PARQUET],
        r"The validation data: the classes of 'label' are \['a', 'b'\], but the training data's are \[",
    ),
    "batch_larger_than_data": (
        [*SMALL_SHAPES, "--train_batch_size", "64"],
        r"makes no full batch: 38 examples per epoch, fewer than --train_batch_size \(64\)",
    ),
    "unknown_config_field": (
        [*SMALL_SHAPES, "--config_overrides", "dropuot=0.1"],
        r"\['dropuot'\] are not fields of VQPriorConfig",
    ),
    "resume_without_checkpoint": (
        [*SMALL_SHAPES, "--resume_from_checkpoint", "latest"],
        r"--resume_from_checkpoint latest: no complete prior-checkpoint-\{step\} folder",
    ),
}


@pytest.mark.parametrize("case", BAD_VQVAE_INPUTS)
def test_train_vqvae_rejects_bad_input_before_training(case, empty_parquet, tmp_path):
    args, message = BAD_VQVAE_INPUTS[case]
    args = [str(empty_parquet) if arg == EMPTY_PARQUET else arg for arg in args]
    argv = [*TINY_VQVAE, *QUIET, "--output_dir", str(tmp_path), "--max_train_steps", "2", *args]
    with pytest.raises(ValueError, match=message):
        load_script(TRAIN_VQVAE).main(argv)
    assert not (tmp_path / "training_history.jsonl").exists()  # no training step was taken


@pytest.mark.parametrize("case", BAD_PRIOR_INPUTS)
def test_train_prior_rejects_bad_input_before_training(
    case, untrained_vqvae_dir, two_class_parquet, tmp_path
):
    args, message = BAD_PRIOR_INPUTS[case]
    args = [str(two_class_parquet) if arg == TWO_CLASS_PARQUET else arg for arg in args]
    argv = [
        *TINY_PRIOR,
        *QUIET,
        "--vqvae_name_or_path",
        str(untrained_vqvae_dir),
        "--output_dir",
        str(tmp_path),
        "--codes_cache_dir",
        str(tmp_path / "codes"),
        "--max_train_steps",
        "2",
        *args,
    ]
    with pytest.raises(ValueError, match=message):
        load_script(TRAIN_PRIOR).main(argv)
    assert not (tmp_path / "prior_training_history.jsonl").exists()


@pytest.mark.parametrize(
    ("script", "flag"),
    [
        ("vqvae", "--model_name_or_path"),
        ("vqvae", "--config_name"),
        ("prior", "--vqvae_name_or_path"),
        ("prior", "--model_name_or_path"),
    ],
)
def test_a_mistyped_model_path_is_reported_by_its_flag(tmp_path, untrained_vqvae_dir, script, flag):
    missing = str(tmp_path / "no-such-run")
    argv = [*SMALL_SHAPES, *QUIET, "--output_dir", str(tmp_path / "out"), flag, missing]
    if script == "prior" and flag == "--model_name_or_path":
        argv = [*argv, "--vqvae_name_or_path", str(untrained_vqvae_dir)]
    with pytest.raises(OSError, match=rf"{flag} '{re.escape(missing)}': no such local folder or file"):
        load_script(TRAIN_VQVAE if script == "vqvae" else TRAIN_PRIOR).main(argv)


def test_train_vqvae_decoder_only_needs_a_trained_model(tmp_path, capsys):
    with pytest.raises(SystemExit):
        load_script(TRAIN_VQVAE).main([*SMALL_SHAPES, "--output_dir", str(tmp_path), "--train_decoder_only"])
    assert "--train_decoder_only fine-tunes a trained model's decoder" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--flip_augmentation"], r"--flip_augmentation mirrors images and video.*audio"),
        (["--augmented_copies", "2"], r"--augmented_copies shifts images and video.*audio"),
        (["--online_augmentation"], r"--online_augmentation shifts images and video.*audio"),
    ],
)
def test_prior_augmentation_refuses_audio(tmp_path, flags, message):
    folder = tmp_path / "audio_vqvae"
    VQVAEModel(VQVAEConfig(modality="audio", hidden_channels=8, residual_channels=4)).save_pretrained(folder)
    argv = [*TINY_PRIOR, "--vqvae_name_or_path", str(folder), "--output_dir", str(tmp_path), *flags]
    with pytest.raises(ValueError, match=message):
        load_script(TRAIN_PRIOR).main([*argv, "--dataset_name", "builtin:tones"])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--augmented_copies", "-1"], r"--augmented_copies \(-1\) and --max_translation \(2\) must be >= 0"),
        (["--augmented_copies", "1", "--max_translation", "0"], r"would leave the examples as they are"),
        (["--online_augmentation", "--max_translation", "0"], r"would leave the examples as they are"),
        (["--online_augmentation", "--augmented_copies", "2"], r"Give one of the two"),
        (["--condition_on_translation"], r"--condition_on_translation labels the shifts"),
        (
            [
                "--online_augmentation",
                "--condition_on_translation",
                "--max_translation",
                "0",
                "--flip_augmentation",
            ],
            r"--condition_on_translation labels the shifts",
        ),
        (
            ["--augmented_copies", "1", "--max_translation", "32"],
            r"smaller than the inputs' height and width",
        ),
    ],
)
def test_prior_augmentation_refuses_copies_it_cannot_make(tmp_path, flags, message):
    folder = tmp_path / "image_vqvae"
    VQVAEModel(tiny_vqvae_config()).save_pretrained(folder)
    argv = [*TINY_PRIOR, "--vqvae_name_or_path", str(folder), "--output_dir", str(tmp_path), *flags]
    with pytest.raises(ValueError, match=message):
        load_script(TRAIN_PRIOR).main([*argv, "--dataset_name", "builtin:shapes"])


# ------------------------------------------------------------------- fine-tuning a released pair of models


@pytest.fixture(scope="module")
def trained_pipeline_dir(tmp_path_factory) -> Path:
    """A tiny VQ-VAE + conditional prior trained a few steps on the built-in shapes (a pipeline folder)."""
    folder = tmp_path_factory.mktemp("trained_pipeline")
    common = [
        *SMALL_SHAPES,
        *QUIET,
        "--output_dir",
        str(folder),
        "--max_train_steps",
        "3",
        "--train_batch_size",
        "8",
    ]
    load_script(TRAIN_VQVAE).main([*TINY_VQVAE, *common])
    load_script(TRAIN_PRIOR).main(
        [
            *TINY_PRIOR,
            *common,
            "--vqvae_name_or_path",
            str(folder),
            "--label_column",
            "label",
            "--codes_cache_dir",
            str(folder / "codes"),
        ]
    )
    return folder


def test_train_decoder_only_keeps_every_code(trained_pipeline_dir, tmp_path):
    output_dir = tmp_path / "decoder_only"
    argv = [*SMALL_SHAPES, *QUIET, "--model_name_or_path", str(trained_pipeline_dir), "--train_decoder_only"]
    load_script(TRAIN_VQVAE).main(
        [
            *argv,
            "--output_dir",
            str(output_dir),
            "--max_train_steps",
            "3",
            "--validation_steps",
            "2",
            "--learning_rate",
            "1e-2",
        ]
    )
    before = VQVAEModel.from_pretrained(trained_pipeline_dir).state_dict()
    after = VQVAEModel.from_pretrained(output_dir).state_dict()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    # Encoder weights, codebook and its EMA/restart buffers untouched (validation at step 2 did not unfreeze them).
    assert changed and all(name.startswith("decoder.") for name in changed), changed


def test_vqvae_fine_tuning_takes_a_loss_type_but_not_a_new_shape(trained_pipeline_dir, tmp_path):
    argv = [
        *SMALL_SHAPES,
        *QUIET,
        "--model_name_or_path",
        str(trained_pipeline_dir),
        "--max_train_steps",
        "1",
    ]
    psnr_dir = tmp_path / "psnr"
    load_script(TRAIN_VQVAE).main(
        [*argv, "--output_dir", str(psnr_dir), "--config_overrides", "reconstruction_loss_type=psnr"]
    )
    assert VQVAEModel.from_pretrained(psnr_dir).config.reconstruction_loss_type == "psnr"
    with pytest.raises(ValueError, match="shape"):
        load_script(TRAIN_VQVAE).main(
            [*argv, "--output_dir", str(tmp_path / "wider"), "--config_overrides", "hidden_channels=64"]
        )


def one_step_prior_args(pipeline_dir: Path) -> list[str]:
    """train_prior.py flags for one step of a tiny conditional prior over the VQ-VAE in `pipeline_dir`."""
    return [
        *TINY_PRIOR,
        *SMALL_SHAPES,
        *QUIET,
        "--vqvae_name_or_path",
        str(pipeline_dir),
        "--label_column",
        "label",
        "--max_train_steps",
        "1",
        "--train_batch_size",
        "8",
    ]


@pytest.mark.parametrize("script", ["vqvae", "prior"])
def test_the_last_step_is_validated_once(trained_pipeline_dir, tmp_path, script):
    output_dir = tmp_path / script
    steps = ["--output_dir", str(output_dir), "--max_train_steps", "4", "--validation_steps", "2"]
    if script == "vqvae":
        argv = [*SMALL_SHAPES, *QUIET, "--model_name_or_path", str(trained_pipeline_dir), *steps]
        load_script(TRAIN_VQVAE).main(argv)
        history = read_history(output_dir / "training_history.jsonl")
    else:
        argv = [
            *one_step_prior_args(trained_pipeline_dir),
            "--codes_cache_dir",
            str(tmp_path / "codes"),
            *steps,
        ]
        load_script(TRAIN_PRIOR).main(argv)
        history = read_history(output_dir / "prior_training_history.jsonl")
    evaluated = [row["step"] for row in history if any(name.startswith("eval_") for name in row)]
    assert evaluated == [2, 4]  # finish() reuses step 4's validation


def fine_tuning(argv: list[str], prior_path: Path) -> list[str]:
    """`argv` turned into a run that trains the prior at `prior_path` on: without the flags that shape a new
    prior, which train_prior.py refuses beside --model_name_or_path."""
    shaping = {"--prior_type", "--hidden_size", "--num_layers", "--num_heads"}
    kept = [
        arg for i, arg in enumerate(argv) if arg not in shaping and (i == 0 or argv[i - 1] not in shaping)
    ]
    return [*kept, "--model_name_or_path", str(prior_path)]


def two_step_fine_tune_args(pipeline_dir: Path, cache_dir: Path) -> list[str]:
    """`one_step_prior_args` for two steps at a learning rate high enough that every trained weight moves."""
    return [
        *one_step_prior_args(pipeline_dir),
        "--max_train_steps",
        "2",
        "--learning_rate",
        "1e-2",
        "--codes_cache_dir",
        str(cache_dir),
    ]


def prior_codes(cache_dir: Path) -> dict[str, torch.Tensor]:
    (cached,) = cache_dir.iterdir()
    codes = datasets.load_from_disk(str(cached))
    return {split: torch.as_tensor(np.array(codes[split]["codes"])) for split in codes}


def encoded_prior_codes(
    pipeline_dir: Path, tmp_path: Path, name: str, *extra: str
) -> dict[str, torch.Tensor]:
    """The code grids one train_prior.py step with `extra` flags encodes, from a codes cache of its own."""
    load_script(TRAIN_PRIOR).main(
        [
            *one_step_prior_args(pipeline_dir),
            *extra,
            "--output_dir",
            str(tmp_path / name),
            "--codes_cache_dir",
            str(tmp_path / f"{name}_codes"),
        ]
    )
    return prior_codes(tmp_path / f"{name}_codes")


def test_prior_flip_augmentation_adds_the_codes_of_mirrored_training_images(trained_pipeline_dir, tmp_path):
    run = partial(encoded_prior_codes, trained_pipeline_dir, tmp_path)
    plain, augmented = run("plain"), run("flipped", "--flip_augmentation")
    num_train = len(plain["train"])
    assert len(augmented["train"]) == 2 * num_train
    assert torch.equal(augmented["train"][:num_train], plain["train"])
    assert not torch.equal(augmented["train"][num_train:], plain["train"])
    assert torch.equal(augmented["validation"], plain["validation"])  # validation stays unflipped


def test_prior_augmented_copies_add_the_codes_of_translated_training_images(trained_pipeline_dir, tmp_path):
    run = partial(encoded_prior_codes, trained_pipeline_dir, tmp_path)
    plain, augmented = run("plain"), run("translated", "--augmented_copies", "2", "--max_translation", "3")
    num_train = len(plain["train"])
    original, *copies = augmented["train"].split(num_train)
    assert len(copies) == 2
    assert torch.equal(original, plain["train"])
    assert not torch.equal(copies[0], plain["train"])
    assert not torch.equal(copies[0], copies[1])  # each copy draws its own offsets
    assert torch.equal(augmented["validation"], plain["validation"])


def test_prior_online_augmentation_caches_only_the_validation_codes(trained_pipeline_dir, tmp_path):
    run = partial(encoded_prior_codes, trained_pipeline_dir, tmp_path)
    plain = run("plain")
    online = run("online", "--online_augmentation", "--flip_augmentation", "--max_train_steps", "2")
    assert list(online) == ["validation"]  # the training inputs are encoded at every step instead
    assert torch.equal(online["validation"], plain["validation"])
    steps = losses_by_step(read_history(tmp_path / "online" / "prior_training_history.jsonl"))
    assert list(steps) == [1, 2]


def test_online_augmentation_encodes_a_fresh_shift_of_every_input_at_every_step(trained_pipeline_dir):
    vqvae = prior_code_grids.load_frozen_vqvae(str(trained_pipeline_dir))
    size = vqvae.config.sample_size
    image = torch.rand(1, vqvae.config.in_channels, *size, generator=torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(image, (1, 1, 1, 1), mode="reflect")
    shifts = [padded[..., y : y + size[0], x : x + size[1]] for y in range(3) for x in range(3)]
    candidates = vqvae.encode(torch.cat(shifts + [shift.flip(-1) for shift in shifts])).codes
    assert len(candidates.unique(dim=0)) > 1  # the shifts are told apart by their codes
    args = argparse.Namespace(
        online_augmentation=True, max_translation=1, flip_augmentation=True, condition_on_translation=False
    )
    batch = {"pixel_values": image.expand(16, -1, -1, -1)}
    (first, no_labels), (second, _) = (
        prior_code_grids.training_codes(args, vqvae, batch, augmentation.augmentation_generator(0, 0, index))
        for index in range(2)
    )
    assert no_labels is None
    for grid in torch.cat([first, second]):
        assert (candidates == grid).flatten(1).all(1).any()  # the codes of one shifted (mirrored) copy
    assert not torch.equal(first, second)  # each batch draws its own shifts


def test_prior_online_augmentation_resumes_with_the_same_shifts(trained_pipeline_dir, tmp_path):
    def run(name: str, *extra: str) -> list[dict]:
        argv = [
            *one_step_prior_args(trained_pipeline_dir),
            "--online_augmentation",
            "--flip_augmentation",
            "--max_train_steps",
            "4",
            "--checkpointing_steps",
            "2",
            "--output_dir",
            str(tmp_path / name),
            "--codes_cache_dir",
            str(tmp_path / "codes"),
            *extra,
        ]
        load_script(TRAIN_PRIOR).main(argv)
        return read_history(tmp_path / name / "prior_training_history.jsonl")

    reference = run("reference")
    shutil.copytree(
        tmp_path / "reference" / "prior-checkpoint-2", tmp_path / "resumed" / "prior-checkpoint-2"
    )
    resumed = run("resumed", "--resume_from_checkpoint", "latest")
    assert list(losses_by_step(resumed)) == [3, 4]
    assert resumed == [record for record in reference if record["step"] > 2]


def test_translation_labels_are_one_hot_over_the_non_zero_shifts():
    offsets = torch.tensor([[0, 0], [1, 1], [2, 2], [1, 2]])  # a 1-pixel border: (1, 1) is unshifted
    labels = augmentation.translation_labels(offsets, 1)
    assert labels.shape == (4, 8)
    assert labels.sum(1).tolist() == [1.0, 0.0, 1.0, 1.0]
    assert labels.argmax(1)[[0, 2, 3]].tolist() == [0, 7, 4]


def test_translated_batch_labels_each_input_with_its_shift():
    image = torch.arange(25.0).view(1, 1, 5, 5)
    padded = torch.nn.functional.pad(image, (1, 1, 1, 1), mode="reflect")[0]
    script = augmentation
    batch = {"pixel_values": image.expand(32, -1, -1, -1)}
    shifted = script.randomly_translated_batch(
        batch, "pixel_values", 1, False, torch.Generator().manual_seed(0)
    )
    for crop, label in zip(shifted["pixel_values"], shifted[script.AUGMENT_LABELS_KEY], strict=True):
        (y, x), *_ = [
            (y, x) for y in range(3) for x in range(3) if torch.equal(padded[..., y : y + 5, x : x + 5], crop)
        ]
        assert torch.equal(label, script.translation_labels(torch.tensor([[y, x]]), 1)[0])


def test_prior_conditioned_on_translation_extends_a_trained_prior(trained_pipeline_dir, tmp_path):
    def run(name: str, prior_path: Path, max_translation: str) -> Path:
        output_dir = tmp_path / name
        argv = [
            *two_step_fine_tune_args(trained_pipeline_dir, tmp_path / "codes"),
            "--online_augmentation",
            "--condition_on_translation",
        ]
        load_script(TRAIN_PRIOR).main(
            [
                *fine_tuning(argv, prior_path),
                "--max_translation",
                max_translation,
                "--output_dir",
                str(output_dir),
            ]
        )
        return output_dir / "prior"

    conditioned = run("conditioned", trained_pipeline_dir / "prior", "1")
    prior = VQPriorModel.from_pretrained(conditioned)
    assert prior.config.augment_dim == 8
    assert prior.backbone.augment_embedding.weight.abs().sum() > 0  # trained, from a zero start
    with pytest.raises(ValueError, match=r"augmentation labels of size 8.*--max_translation 2 makes 24"):
        run("wider", conditioned, "2")


@pytest.mark.parametrize(
    ("num_layers", "num_added_layers", "order"),
    [(4, 1, "ooooN"), (4, 2, "ooNooN"), (3, 2, "ooNoN"), (2, 4, "oNNoNN")],
)
def test_added_layers_follow_the_last_block_of_equal_groups(num_layers, num_added_layers, order):
    positions = added_layer_positions(num_layers, num_added_layers)
    assert "".join("N" if is_new else "o" for is_new in positions) == order


def test_a_deepened_prior_computes_what_the_trained_one_did():
    config = VQPriorConfig(codebook_size=16, code_shape=[3, 3], num_classes=2, hidden_size=16, num_layers=3)
    prior = VQPriorModel(config).eval()
    deeper = prior.with_added_layers(2).eval()
    codes, labels = torch.randint(0, 16, (4, 3, 3)), torch.tensor([0, 1, 1, 0])

    assert deeper.config.num_layers == 5 and prior.config.num_layers == 3
    assert torch.equal(deeper(codes, labels).logits, prior(codes, labels).logits)
    blocks = deeper.backbone.decoder.h
    assert torch.equal(blocks[3].mlp.c_fc.weight, prior.backbone.decoder.h[2].mlp.c_fc.weight)
    # A new block: only its output projections start at zero.
    assert blocks[2].attn.c_attn.weight.abs().sum() > 0
    assert not blocks[2].attn.c_proj.weight.any() and not blocks[4].mlp.c_proj.bias.any()


def test_deepening_refuses_a_pixelcnn_prior():
    pixelcnn = VQPriorModel(
        VQPriorConfig(prior_type="pixelcnn", codebook_size=16, code_shape=[3, 3], hidden_size=8, num_layers=2)
    )
    with pytest.raises(ValueError, match="deepens transformer priors; this one is a pixelcnn"):
        pixelcnn.with_added_layers(1)


def test_prior_fine_tuning_deepens_a_trained_prior(trained_pipeline_dir, tmp_path):
    argv = [*two_step_fine_tune_args(trained_pipeline_dir, tmp_path / "codes"), "--num_added_layers", "1"]
    with pytest.raises(
        ValueError, match="deepens a trained prior: give a count >= 0 with --model_name_or_path"
    ):
        load_script(TRAIN_PRIOR).main([*argv, "--output_dir", str(tmp_path / "new")])
    trained = trained_pipeline_dir / "prior"
    load_script(TRAIN_PRIOR).main([*fine_tuning(argv, trained), "--output_dir", str(tmp_path / "deeper")])

    deeper = VQPriorModel.from_pretrained(tmp_path / "deeper" / "prior")
    assert deeper.config.num_layers == VQPriorModel.from_pretrained(trained).config.num_layers + 1
    assert deeper.backbone.decoder.h[-1].mlp.c_proj.weight.abs().sum() > 0  # trained, from a zero start


def test_prior_training_writes_the_pipelines_code_beside_the_models(trained_pipeline_dir):
    """`pipeline(model=folder, trust_remote_code=True)` finds the pipeline in a training output folder
    (test_remote_code.py runs it)."""
    config = json.loads((trained_pipeline_dir / "config.json").read_text())
    assert config["custom_pipelines"][REMOTE_TASK]["impl"] == "vq_sample.VQSamplePipeline"
    assert set(code_files(VQSamplePipeline.__module__)) <= {
        path.name for path in trained_pipeline_dir.glob("*.py")
    }


def test_prior_training_adds_axial_positions_to_a_new_or_trained_prior(trained_pipeline_dir, tmp_path):
    argv = [*two_step_fine_tune_args(trained_pipeline_dir, tmp_path / "codes"), "--axial_positions"]
    load_script(TRAIN_PRIOR).main([*argv, "--output_dir", str(tmp_path / "new")])
    assert VQPriorModel.from_pretrained(tmp_path / "new" / "prior").config.axial_positions

    trained = trained_pipeline_dir / "prior"
    load_script(TRAIN_PRIOR).main([*fine_tuning(argv, trained), "--output_dir", str(tmp_path / "tuned")])
    tuned = VQPriorModel.from_pretrained(tmp_path / "tuned" / "prior")
    assert tuned.config.axial_positions and not VQPriorModel.from_pretrained(trained).config.axial_positions
    assert all(table.abs().sum() > 0 for table in tuned.backbone.axial_positions.tables)  # trained, from zero


def test_randomly_translated_crops_the_reflected_input_and_leaves_the_rest():
    image = torch.arange(25.0).view(1, 1, 5, 5)
    padded = torch.nn.functional.pad(image, (1, 1, 1, 1), mode="reflect")[0]
    crops = [padded[..., y : y + 5, x : x + 5] for y in range(3) for x in range(3)]
    candidates = crops + [crop.flip(-1) for crop in crops]
    batch = {"pixel_values": image.expand(64, -1, -1, -1), "class_labels": torch.arange(64)}
    generator = torch.Generator().manual_seed(0)
    (shifted,) = augmentation.randomly_translated([batch], "pixel_values", 1, True, generator)
    seen = {next(i for i, c in enumerate(candidates) if torch.equal(c, x)) for x in shifted["pixel_values"]}
    assert len(seen) > 9  # shifted both ways and mirrored, every one a candidate
    assert shifted["class_labels"] is batch["class_labels"]


def test_flipped_horizontally_mirrors_only_the_inputs():
    batch = {"pixel_values": torch.arange(6.0).view(1, 1, 2, 3), "class_labels": torch.tensor([1])}
    (flipped,) = augmentation.flipped_horizontally([batch], "pixel_values")
    assert flipped["pixel_values"].tolist() == [[[[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]]]]
    assert flipped["class_labels"] is batch["class_labels"]


def test_prior_fine_tuning_takes_dropout_but_not_a_new_shape_or_other_classes(
    trained_pipeline_dir, tmp_path, capsys
):
    argv = [
        *fine_tuning(one_step_prior_args(trained_pipeline_dir), trained_pipeline_dir / "prior"),
        "--codes_cache_dir",
        str(tmp_path / "codes"),
    ]
    load_script(TRAIN_PRIOR).main(
        [*argv, "--output_dir", str(tmp_path / "dropout"), "--config_overrides", "dropout=0.25"]
    )
    assert VQPriorModel.from_pretrained(tmp_path / "dropout" / "prior").config.dropout == 0.25
    with pytest.raises(ValueError, match="shape"):
        load_script(TRAIN_PRIOR).main(
            [*argv, "--output_dir", str(tmp_path / "wider"), "--config_overrides", "hidden_size=64"]
        )
    with pytest.raises(SystemExit):
        prior_arguments.parse_args([*argv, "--output_dir", str(tmp_path / "wider"), "--hidden_size", "64"])
    assert "--hidden_size set the architecture of a new prior" in capsys.readouterr().err
    unlabelled = [arg for arg in argv if arg not in ("--label_column", "label")]
    with pytest.raises(
        ValueError, match=r"conditioned on 4 classes, but the training data has no --label_column"
    ):
        load_script(TRAIN_PRIOR).main([*unlabelled, "--output_dir", str(tmp_path / "unlabelled")])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--checkpointing_steps", "0"], "--checkpointing_steps: must be an integer >= 1, got 0"),
        (["--gradient_accumulation_steps", "0"], "--gradient_accumulation_steps: must be an integer >= 1"),
        (["--checkpoints_total_limit", "0"], "--checkpoints_total_limit: must be an integer >= 1"),
        (["--lr_warmup_steps", "-1"], "--lr_warmup_steps: must be an integer >= 0"),
        (
            ["--lr_scheduler", "reduce_lr_on_plateau"],
            "--lr_scheduler: invalid choice: 'reduce_lr_on_plateau'",
        ),
    ],
)
def test_training_flags_out_of_range_are_refused_by_the_parser(flags, message, tmp_path, capsys):
    for parse_args, required in (
        (train_vqvae_module.parse_args, []),
        (prior_arguments.parse_args, ["--vqvae_name_or_path", str(tmp_path)]),
    ):
        with pytest.raises(SystemExit):
            parse_args([*required, "--output_dir", str(tmp_path), *flags])
        assert message in capsys.readouterr().err


@pytest.mark.skipif(not CIFAR10.exists(), reason=f"real data not found at {CIFAR10}")
def test_train_vqvae_names_the_columns_of_real_data(tmp_path):
    argv = [
        *TINY_VQVAE,
        *QUIET,
        "--output_dir",
        str(tmp_path),
        "--data_files",
        str(CIFAR10),
        "--image_column",
        "image",
    ]
    with pytest.raises(ValueError, match=r"'image' not found; the dataset has columns \['img', 'label'\]"):
        load_script(TRAIN_VQVAE).main(argv)


# ------------------------------------------------------------- Moving Fashion-MNIST, separate validation files


def write_idx_images(folder: Path, images: np.ndarray) -> None:
    """Fashion-MNIST's layout (`train-images-idx3-ubyte` + labels) for `images`, uint8 (N, 28, 28)."""
    folder.mkdir(parents=True, exist_ok=True)
    count = len(images)
    header = struct.pack(">BBBBIII", 0, 0, 0x08, 3, count, 28, 28)
    (folder / "train-images-idx3-ubyte").write_bytes(header + images.tobytes())
    labels = struct.pack(">BBBBI", 0, 0, 0x08, 1, count) + bytes(count)
    (folder / "train-labels-idx1-ubyte").write_bytes(labels)


def test_moving_fmnist_validates_on_unseen_sprites_from_its_own_files(tmp_path):
    # Sprite i is a flat square of brightness 5 * (i + 1): a clip's brightest pixel names a sprite it holds.
    sprites = np.repeat(np.arange(5, 205, 5, dtype=np.uint8), 28 * 28).reshape(40, 28, 28)
    write_idx_images(tmp_path / "fmnist", sprites)
    data = tmp_path / "moving-fmnist"
    load_script(EXAMPLES / "make_moving_fmnist.py").main(
        ["--output_dir", str(data), "--fashion_mnist_dir", str(tmp_path / "fmnist")]
        + ["--num_train_clips", "12", "--num_validation_clips", "5", "--num_validation_sprites", "10"]
        + ["--num_frames", "4", "--canvas_size", "40"]
    )
    train, validation = (
        load_raw_dataset(data_files=str(data / f"{split}.parquet")) for split in ("train", "validation")
    )
    train_peaks = {int(decode_video(clip)[0].max()) for clip in train["video"]}
    validation_peaks = {int(decode_video(clip)[0].max()) for clip in validation["video"]}
    assert max(train_peaks) <= 150 < 155 <= min(validation_peaks)  # sprites 0-29 vs 30-39

    argv = [
        *QUIET,
        "--output_dir",
        str(tmp_path / "model"),
        "--data_files",
        str(data / "train.parquet"),
        "--validation_data_files",
        str(data / "validation.parquet"),
        "--modality",
        "video",
        "--config_overrides",
        "in_channels=1,hidden_channels=8,residual_channels=4,codebook_size=16,embedding_dim=4,"
        "sample_size=[4,40,40]",
        "--train_batch_size",
        "4",
        "--max_train_steps",
        "2",
    ]
    load_script(TRAIN_VQVAE).main(argv)
    history = read_history(tmp_path / "model" / "training_history.jsonl")
    assert [row["eval_num_eval_examples"] for row in history if "eval_num_eval_examples" in row] == [5]
    # Each validation clip beside its reconstruction, not the originals numbered as reconstructions.
    gifs = sorted(path.name for path in (tmp_path / "model" / "samples").glob("*.gif"))
    assert gifs == [f"original_vs_reconstruction_{index}.gif" for index in range(len(gifs))] and gifs


def test_the_card_shows_the_launch_command(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["examples/train_vqvae.py", "--output_dir", "my runs/a"])
    assert (
        launch_command(SimpleNamespace(num_processes=1))
        == "python examples/train_vqvae.py --output_dir 'my runs/a'"
    )
    assert launch_command(SimpleNamespace(num_processes=2)) == (
        "accelerate launch --num_processes 2 examples/train_vqvae.py --output_dir 'my runs/a'"
    )


def test_a_streamed_training_set_sorted_by_class_is_shuffled(tmp_path):
    path = tmp_path / "sorted.parquet"
    features = Features({"image": ImageFeature(), "label": ClassLabel(names=["a", "b"])})
    images = [PIL.Image.new("RGB", (16, 16), "red")] * 32 + [PIL.Image.new("RGB", (16, 16), "blue")] * 32
    Dataset.from_dict({"image": images, "label": [0] * 32 + [1] * 32}, features=features).to_parquet(
        str(path)
    )
    script = train_vqvae_module  # the loop of examples/train_vqvae.py
    args = script.parse_args(
        [
            *TINY_VQVAE,
            "--data_files",
            str(path),
            "--label_column",
            "label",
            "--streaming",
            "--max_train_steps",
            "1",
        ]
        + [
            "--validation_split_percentage",
            "0",
            "--train_batch_size",
            "16",
            "--output_dir",
            str(tmp_path / "out"),
        ]
    )
    config = apply_config_overrides(
        VQVAEConfig, {"sample_size": 16, **parse_config_overrides(args.config_overrides)}
    )
    raw_train, raw_eval, _, _ = script.load_splits(args, config.modality)
    train_loader, _ = script.build_dataloaders(args, config, Accelerator(cpu=True), raw_train, raw_eval)
    labels = next(iter(train_loader))["class_labels"]
    assert 0 < labels.sum() < len(labels)  # both classes in the first batch


# ------------------------------------------------------------------- a user's own labels and files


def write_labelled_parquet(path: Path, labels: list, feature=None) -> Path:
    """16 images of 16x16 whose `kind` column holds `labels` (repeated to 16 rows)."""
    images = [PIL.Image.new("RGB", (16, 16), (16 * index, 0, 255 - 16 * index)) for index in range(16)]
    kinds = [labels[index % len(labels)] for index in range(16)]
    features = Features({"image": ImageFeature(), "kind": feature}) if feature is not None else None
    Dataset.from_dict({"image": images, "kind": kinds}, features=features).to_parquet(str(path))
    return path


def labelled_prior_argv(untrained_vqvae_dir: Path, data: Path, output_dir: Path) -> list[str]:
    return [
        *TINY_PRIOR,
        *QUIET,
        "--vqvae_name_or_path",
        str(untrained_vqvae_dir),
        "--data_files",
        str(data),
        "--label_column",
        "kind",
        "--validation_split_percentage",
        "25",
        "--max_train_steps",
        "1",
        "--train_batch_size",
        "4",
        "--output_dir",
        str(output_dir),
        "--codes_cache_dir",
        str(output_dir / "codes"),
    ]


@pytest.mark.parametrize(
    ("labels", "feature", "id2label"),
    [
        ([0, 2, 1], None, {0: "0", 1: "1", 2: "2"}),  # plain integers: ids 0..max
        (["dog", "cat"], None, {0: "cat", 1: "dog"}),  # strings: encoded as class_encode_column does
    ],
    ids=["integers", "strings"],
)
def test_a_prior_takes_integer_and_string_label_columns(
    untrained_vqvae_dir, tmp_path, labels, feature, id2label
):
    data = write_labelled_parquet(tmp_path / "data.parquet", labels, feature)
    load_script(TRAIN_PRIOR).main(labelled_prior_argv(untrained_vqvae_dir, data, tmp_path / "out"))
    config = VQPriorModel.from_pretrained(tmp_path / "out" / "prior").config
    assert config.num_classes == len(id2label) and config.id2label == id2label


def test_unlabelled_rows_are_refused_before_encoding(untrained_vqvae_dir, tmp_path):
    data = write_labelled_parquet(tmp_path / "data.parquet", [0, 1, -1, 2], ClassLabel(names=["a", "b", "c"]))
    with pytest.raises(ValueError, match=r"--label_column 'kind': 4 rows have no class \(label -1\)"):
        load_script(TRAIN_PRIOR).main(labelled_prior_argv(untrained_vqvae_dir, data, tmp_path / "out"))
    assert not (tmp_path / "out" / "codes").exists()


def test_cached_codes_follow_the_data_files(untrained_vqvae_dir, tmp_path, caplog):
    data = write_labelled_parquet(tmp_path / "data.parquet", ["cat", "dog"])
    argv = labelled_prior_argv(untrained_vqvae_dir, data, tmp_path / "out")
    load_script(TRAIN_PRIOR).main(argv)
    time.sleep(1.1)  # a later modification time, which datasets' fingerprint of the files includes
    write_labelled_parquet(data, ["bird", "cat", "dog"])  # a class added, same path
    with caplog.at_level(logging.INFO):
        load_script(TRAIN_PRIOR).main(argv)
    assert "Reusing cached codes" not in caplog.text
    assert VQPriorModel.from_pretrained(tmp_path / "out" / "prior").config.id2label == {
        0: "bird",
        1: "cat",
        2: "dog",
    }


def test_streaming_skips_a_corrupt_file_beside_a_validation_split(tmp_path, caplog):
    folder = tmp_path / "images" / "things"
    folder.mkdir(parents=True)
    for index in range(12):
        PIL.Image.new("RGB", (16, 16), (20 * index, 0, 0)).save(folder / f"{index}.png")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    argv = [
        *TINY_VQVAE,
        *QUIET,
        "--train_data_dir",
        str(tmp_path / "images"),
        "--streaming",
        "--validation_split_percentage",
        "20",
        "--max_train_steps",
        "2",
        "--train_batch_size",
        "4",
        "--max_bad_fraction",
        "0.5",
        "--output_dir",
        str(tmp_path / "out"),
    ]
    with caplog.at_level(logging.WARNING):
        load_script(TRAIN_VQVAE).main(argv)
    assert (tmp_path / "out" / "model.safetensors").is_file()


@pytest.mark.parametrize("layout", ["train_and_validation_folders", "validation_data_dir"])
def test_a_validation_folder_is_the_validation_split(tmp_path, layout):
    root = tmp_path / "images"
    counts = {"train": 12, "validation": 3}
    for split, count in counts.items():
        folder = (
            root / split / "things"
            if layout == "train_and_validation_folders"
            else tmp_path / split / "things"
        )
        folder.mkdir(parents=True)
        for index in range(count):
            PIL.Image.new("RGB", (16, 16), (20 * index, 0, 0)).save(folder / f"{index}.png")
    data = (
        ["--train_data_dir", str(root)]
        if layout == "train_and_validation_folders"
        else [
            "--train_data_dir",
            str(tmp_path / "train"),
            "--validation_data_dir",
            str(tmp_path / "validation"),
        ]
    )
    argv = [*TINY_VQVAE, *QUIET, *data, "--max_train_steps", "1", "--train_batch_size", "4"]
    load_script(TRAIN_VQVAE).main([*argv, "--output_dir", str(tmp_path / "out")])
    history = read_history(tmp_path / "out" / "training_history.jsonl")
    assert [row["eval_num_eval_examples"] for row in history if "eval_num_eval_examples" in row] == [3]
