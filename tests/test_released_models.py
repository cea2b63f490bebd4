"""The released models in `model_cards/`: each loads with `from_pretrained` and the pipeline (also by Hub id from a
cache), samples, and reconstructs a few of its validation examples within 1 dB of the PSNR its card reports.

Every test skips cleanly when a folder holds no weights yet, or when the validation data is not beside the repo.
"""

from pathlib import Path

import pytest
import torch
from conftest import SHARED_DATA
from huggingface_hub import ModelCard
from test_hub_loading import hub_cache  # noqa: F401  (fixture)
from transformers import pipeline

from hf_vqvae import VQSamplePipeline, VQVAEModel
from hf_vqvae.data import (
    build_preprocessor,
    collate_examples,
    load_raw_dataset,
    prepare_dataset,
    split_train_validation,
)
from hf_vqvae.metrics import psnr_uint8

MODEL_CARDS = Path(__file__).resolve().parents[1] / "model_cards"
# Each released image model: its validation data (file, image column, held-out percentage).
IMAGE_MODELS = {"vqvae-cifar10": (SHARED_DATA / "cifar10" / "train.parquet", "img", 10)}


def released_folder(name: str) -> Path:
    folder = MODEL_CARDS / name
    if not (folder / "model.safetensors").is_file() or not (folder / "prior" / "model.safetensors").is_file():
        pytest.skip(f"model_cards/{name} holds no released weights yet")
    return folder


def card_metric(folder: Path, metric_type: str) -> float:
    results = ModelCard.load(folder / "README.md").data.eval_results
    return next(result.metric_value for result in results if result.metric_type == metric_type)


@pytest.mark.parametrize("name", sorted(IMAGE_MODELS))
def test_released_model_samples_through_the_pipeline(name):
    folder = released_folder(name)
    pipe = pipeline("vq-sample", model=str(folder))
    assert isinstance(pipe, VQSamplePipeline)
    pipe.set_progress_bar_config(disable=True)
    images = pipe(num_samples=2, class_labels=[0, 1], seed=0)
    assert [image.size for image in images] == [(32, 32)] * 2


@pytest.mark.parametrize("name", sorted(IMAGE_MODELS))
def test_released_model_reconstructs_validation_images_as_its_card_says(name):
    folder = released_folder(name)
    data_file, column, percentage = IMAGE_MODELS[name]
    if not data_file.is_file():
        pytest.skip(f"{data_file} is not present")
    model = VQVAEModel.from_pretrained(folder).eval()
    _, validation = split_train_validation(load_raw_dataset(data_files=str(data_file)), percentage)
    prepared = prepare_dataset(
        validation.select(range(256)), build_preprocessor(model.config, train=False), column
    )
    batch = collate_examples([prepared[i] for i in range(256)])["pixel_values"]
    with torch.no_grad():
        reconstruction = model(batch).reconstruction
    measured = psnr_uint8(reconstruction, batch).item()
    assert abs(measured - card_metric(folder, "psnr_uint8")) < 1.0


@pytest.mark.parametrize("name", sorted(IMAGE_MODELS))
def test_released_model_loads_by_hub_id_from_the_cache(name, hub_cache):  # noqa: F811
    folder = released_folder(name)
    hub_cache(folder.resolve(), f"org/{name}")
    assert isinstance(VQVAEModel.from_pretrained(f"org/{name}"), VQVAEModel)
    pipe = pipeline("vq-sample", model=f"org/{name}")
    pipe.set_progress_bar_config(disable=True)
    assert len(pipe(num_samples=1, class_labels=0, seed=0)) == 1
