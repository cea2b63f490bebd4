"""The released models in `model_cards/`: each loads with `from_pretrained` and the pipeline (also by Hub id from a
cache), samples, and reconstructs a few of its validation examples within 1 dB of what its card reports.

Every test skips cleanly when a folder holds no weights yet, or when its validation data is not on the machine
(CIFAR-10 and FSDD beside the repo in `../shared/data`, Fashion-MNIST from Debian's `dataset-fashion-mnist`).
"""

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import EXAMPLES, SHARED_DATA, load_script
from huggingface_hub import ModelCard
from test_hub_loading import hub_cache  # noqa: F401  (fixture)
from transformers import AutoFeatureExtractor, AutoImageProcessor, pipeline

from hf_vqvae import VQPriorModel, VQSamplePipeline, VQVAEModel, VQVAEVideoProcessor
from hf_vqvae.data import (
    build_preprocessor,
    load_raw_dataset,
    make_moving_mnist,
    read_fashion_mnist,
    split_train_validation,
)
from hf_vqvae.data.columns import speakers_as_ids
from hf_vqvae.data.idx import FASHION_MNIST_DIR
from hf_vqvae.evaluation.reconstruction import evaluate_split
from hf_vqvae.models.remote_code import code_files
from hf_vqvae.pipelines.remote_pipeline import REMOTE_TASK

MODEL_CARDS = Path(__file__).resolve().parents[1] / "model_cards"
NUM_CHECKED_EXAMPLES = 64


def shared_validation(parquet: str, column: str) -> Callable[[], tuple[object, str]]:
    """The cards' split of a parquet in ../shared/data: every 10th row."""

    def load() -> tuple[object, str]:
        data_file = SHARED_DATA / parquet
        if not data_file.is_file():
            pytest.skip(f"{data_file} is not present")
        _, validation = split_train_validation(load_raw_dataset(data_files=str(data_file)), 10)
        return validation, column

    return load


def moving_fmnist_validation() -> tuple[object, str]:
    """The first clips of the card's validation set, rebuilt as `examples/make_moving_fmnist.py` builds it by
    default, from Debian's copy of Fashion-MNIST."""
    try:
        sprites, _ = read_fashion_mnist(FASHION_MNIST_DIR, "train")
    except FileNotFoundError:
        pytest.skip(f"Fashion-MNIST is not installed under {FASHION_MNIST_DIR}")
    script = load_script(EXAMPLES / "make_moving_fmnist.py")
    validation_sprites, _, seed = script.clip_splits(script.parse_args(["--output_dir", "unused"]), sprites)[
        "validation"
    ]
    return make_moving_mnist(validation_sprites, NUM_CHECKED_EXAMPLES, seed=seed), "video"


# Each released model: its validation data, and the card metric a reconstruction of it must match.
RELEASED_MODELS: dict[str, tuple[Callable[[], tuple[object, str]], str]] = {
    "vqvae-cifar10": (shared_validation("cifar10/train.parquet", "img"), "psnr_uint8"),
    "vqvae-fsdd": (shared_validation("fsdd/train.parquet", "audio"), "snr_db"),
    "vqvae-moving-fmnist": (moving_fmnist_validation, "psnr_uint8"),
}


def released_folder(name: str) -> Path:
    folder = MODEL_CARDS / name
    if not (folder / "model.safetensors").is_file() or not (folder / "prior" / "model.safetensors").is_file():
        pytest.skip(f"model_cards/{name} holds no released weights yet")
    return folder


def card_metric(folder: Path, metric_type: str) -> float:
    results = ModelCard.load(folder / "README.md").data.eval_results
    return next(result.metric_value for result in results if result.metric_type == metric_type)


def reconstruction_metrics(model: VQVAEModel, validation, column: str) -> dict[str, float]:
    """The card's metrics over the first validation examples: whole recordings for audio, else centred inputs; a
    decoder with speakers decodes each take with its own."""
    subset = validation.select(range(min(NUM_CHECKED_EXAMPLES, len(validation))))
    speaker_column = None
    if model.config.num_speakers:
        speaker_column = "speaker"
        subset = speakers_as_ids(subset, speaker_column, list(model.config.id2speaker.values()))
    return evaluate_split(
        model, subset, column, batch_size=NUM_CHECKED_EXAMPLES, speaker_column=speaker_column
    )


def assert_sample_shapes(samples: list, model: VQVAEModel) -> None:
    config = model.config
    if config.modality == "image":
        assert [image.size for image in samples] == [tuple(config.sample_size[::-1])] * len(samples)
    elif config.modality == "audio":
        assert all(sample["audio"].shape == (1, config.sample_size[0]) for sample in samples)
        assert all(sample["sampling_rate"] == config.sampling_rate for sample in samples)
    else:
        assert all(len(frames) == config.sample_size[0] for frames in samples)


@pytest.mark.parametrize("name", sorted(RELEASED_MODELS))
def test_released_model_samples_through_the_pipeline(name):
    folder = released_folder(name)
    pipe = pipeline("vq-sample", model=str(folder))
    assert isinstance(pipe, VQSamplePipeline)
    pipe.set_progress_bar_config(disable=True)
    num_classes = pipe.prior.config.num_classes
    labels = [0, 1] if num_classes else None
    assert_sample_shapes(pipe(num_samples=2, class_labels=labels, seed=0), pipe.model)


@pytest.mark.parametrize("name", sorted(RELEASED_MODELS))
def test_released_model_reconstructs_validation_examples_as_its_card_says(name):
    folder = released_folder(name)
    load_validation, metric = RELEASED_MODELS[name]
    validation, column = load_validation()
    model = VQVAEModel.from_pretrained(folder).eval()
    measured = reconstruction_metrics(model, validation, column)[metric]
    assert abs(measured - card_metric(folder, metric)) < 1.0


@pytest.mark.parametrize("name", sorted(RELEASED_MODELS))
def test_released_model_loads_by_hub_id_from_the_cache(name, hub_cache):  # noqa: F811
    folder = released_folder(name)
    hub_cache(folder.resolve(), f"org/{name}")
    assert isinstance(VQVAEModel.from_pretrained(f"org/{name}"), VQVAEModel)
    pipe = pipeline("vq-sample", model=f"org/{name}")
    pipe.set_progress_bar_config(disable=True)
    class_label = 0 if pipe.prior.config.num_classes else None
    assert len(pipe(num_samples=1, class_labels=class_label, seed=0)) == 1


# Loads a released folder as its card shows for users without the package, and samples one grid.
REMOTE_SAMPLING = """
import sys
sys.modules["hf_vqvae"] = None
import torch
from transformers import AutoModel

folder, output = sys.argv[1:3]
model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
prior = AutoModel.from_pretrained(folder, subfolder="prior", trust_remote_code=True).eval()
labels = [0] if prior.config.num_classes else None
codes = prior.generate(1, class_labels=labels, generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    torch.save({"codes": codes, "samples": model.decode(codes)}, output)
"""


@pytest.mark.parametrize("name", sorted(RELEASED_MODELS))
def test_released_model_samples_with_transformers_alone(name, tmp_path):
    folder = released_folder(name)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run(
        [sys.executable, "-c", REMOTE_SAMPLING, str(folder), str(tmp_path / "out.pt")],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    remote = torch.load(tmp_path / "out.pt")
    model = VQVAEModel.from_pretrained(folder).eval()
    prior = VQPriorModel.from_pretrained(folder, subfolder="prior").eval()
    labels = [0] if prior.config.num_classes else None
    codes = prior.generate(1, class_labels=labels, generator=torch.Generator().manual_seed(0))
    assert torch.equal(remote["codes"], codes)
    with torch.no_grad():
        torch.testing.assert_close(remote["samples"], model.decode(codes), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", sorted(RELEASED_MODELS))
def test_released_model_has_the_processor_of_its_data_path(name):
    folder = released_folder(name)
    model = VQVAEModel.from_pretrained(folder)
    config = model.config
    rng = np.random.default_rng(0)
    if config.modality == "audio":
        processor = AutoFeatureExtractor.from_pretrained(folder)
        raw = rng.uniform(-0.3, 0.3, config.sample_size[0]).astype(np.float32)
        processed = processor(raw, sampling_rate=config.sampling_rate)["input_values"][0]
        expected = build_preprocessor(config, train=False)(
            {"array": raw, "sampling_rate": config.sampling_rate}
        )
    else:
        processor = (
            AutoImageProcessor.from_pretrained(folder)
            if config.modality == "image"
            else VQVAEVideoProcessor.from_pretrained(folder)
        )
        shape = (*config.sample_size[:-2], 40, 48, 3)
        raw = rng.integers(0, 256, shape, dtype=np.uint8)
        processed = processor(raw)["pixel_values"][0]
        expected = build_preprocessor(config, train=False)(raw)
    torch.testing.assert_close(processed, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", sorted(RELEASED_MODELS))
def test_released_folders_carry_the_packages_current_model_code(name):
    """The code a released folder runs as remote code is the package's own, the pipeline's included (refresh it
    with `hf_vqvae.models.remote_code.add_remote_code` and `hf_vqvae.pipelines.remote_pipeline.add_pipeline_code`
    after changing the models or the pipeline)."""
    folder = released_folder(name)
    expected = (
        code_files(VQVAEModel.__module__)
        | code_files(VQPriorModel.__module__)
        | code_files(VQSamplePipeline.__module__)
    )
    config = json.loads((folder / "config.json").read_text())
    assert config["custom_pipelines"][REMOTE_TASK]["impl"] == "vq_sample.VQSamplePipeline"
    for file_name, source in expected.items():
        assert (folder / file_name).read_text() == source, f"{name}/{file_name} is stale"
    for file_name, source in code_files(VQPriorModel.__module__).items():
        assert (folder / "prior" / file_name).read_text() == source, f"{name}/prior/{file_name} is stale"
