"""The processors: an image processor, an audio feature extractor and a video processor built from a VQ-VAE's config,
saved beside the model, loaded by transformers' Auto classes, and the same preprocessing the data path uses."""

import io

import numpy as np
import PIL.Image
import pytest
import soundfile
import torch
from conftest import tiny_config
from transformers import AutoFeatureExtractor, AutoImageProcessor

from hf_vqvae import VQVAEFeatureExtractor, VQVAEImageProcessor, VQVAEModel, VQVAEVideoProcessor
from hf_vqvae.data import build_preprocessor
from hf_vqvae.models.vqvae.processors import processor_for


def random_image(width=24, height=20, mode="RGB", seed=0) -> PIL.Image.Image:
    channels = {"RGB": 3, "RGBA": 4}[mode]
    array = np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)
    return PIL.Image.fromarray(array, mode)


@pytest.mark.parametrize(
    ("modality", "processor_class", "file_name"),
    [
        ("image", VQVAEImageProcessor, "preprocessor_config.json"),
        ("audio", VQVAEFeatureExtractor, "preprocessor_config.json"),
        ("video", VQVAEVideoProcessor, "video_preprocessor_config.json"),
    ],
)
def test_every_saved_model_carries_its_processor(tmp_path, modality, processor_class, file_name):
    VQVAEModel(tiny_config(modality)).save_pretrained(tmp_path)
    assert (tmp_path / file_name).is_file()
    loaded = processor_class.from_pretrained(tmp_path)
    assert loaded.to_dict() == processor_for(tiny_config(modality)).to_dict() | {"auto_map": loaded.auto_map}
    assert list(loaded.auto_map.values()) == [
        f"{processor_class.__module__.rsplit('.', 1)[-1]}.{processor_class.__name__}"
    ]


def test_auto_classes_load_the_image_processor_and_the_feature_extractor(tmp_path):
    VQVAEModel(tiny_config("image")).save_pretrained(tmp_path / "image")
    VQVAEModel(tiny_config("audio")).save_pretrained(tmp_path / "audio")
    assert isinstance(AutoImageProcessor.from_pretrained(tmp_path / "image"), VQVAEImageProcessor)
    assert isinstance(AutoFeatureExtractor.from_pretrained(tmp_path / "audio"), VQVAEFeatureExtractor)


def test_the_image_processor_is_the_data_paths_preprocessing():
    config = tiny_config("image")
    image = random_image()
    processed = processor_for(config)(image)["pixel_values"]
    assert processed.shape == (1, 3, 16, 16)
    torch.testing.assert_close(processed[0], build_preprocessor(config, train=False)(image), rtol=0, atol=0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    from_bytes = build_preprocessor(config, train=False)({"bytes": buffer.getvalue(), "path": None})
    torch.testing.assert_close(processed[0], from_bytes, rtol=0, atol=0)


def test_the_image_processor_round_trips_images_of_the_models_size():
    processor = VQVAEImageProcessor(size={"height": 20, "width": 24})
    image = random_image()
    pixel_values = processor([image, image])["pixel_values"]
    assert pixel_values.min() >= -1 and pixel_values.max() <= 1
    assert np.array_equal(np.asarray(processor.postprocess(pixel_values)[1]), np.asarray(image))
    assert np.array_equal(processor.postprocess(pixel_values, "np")[0], np.asarray(image))
    assert processor.postprocess(pixel_values, "pt")[0].shape == (3, 20, 24)


def test_the_image_processor_documents_its_conversions():
    processor = VQVAEImageProcessor(size={"height": 2, "width": 2}, num_channels=1)
    transparent = PIL.Image.new(
        "RGBA", (2, 2), (0, 0, 0, 0)
    )  # black under full transparency: white on a page
    assert processor(transparent)["pixel_values"].shape == (1, 1, 2, 2)
    assert torch.equal(processor(transparent)["pixel_values"], torch.ones(1, 1, 2, 2))
    grey = np.full((2, 2), 255, np.uint8)
    assert torch.equal(processor(grey)["pixel_values"], torch.ones(1, 1, 2, 2))


@pytest.mark.parametrize(
    ("image", "error", "message"),
    [
        (np.zeros((4, 4, 3), np.float32), ValueError, "got dtype float32"),
        (np.zeros((4, 4, 2), np.uint8), ValueError, r"got an array of shape \(4, 4, 2\)"),
        ("cat.png", TypeError, "got str"),
        ([], ValueError, "images is empty"),
    ],
)
def test_the_image_processor_refuses_what_it_cannot_read(image, error, message):
    with pytest.raises(error, match=message):
        VQVAEImageProcessor()(image)


def test_the_image_processor_checks_its_settings():
    with pytest.raises(ValueError, match="num_channels must be one of"):
        VQVAEImageProcessor(num_channels=4)
    with pytest.raises(ValueError, match="size must be"):
        VQVAEImageProcessor(size={"shortest_edge": 32})


def test_the_feature_extractor_pads_to_the_hop_and_masks_the_padding():
    extractor = VQVAEFeatureExtractor(feature_size=1, sampling_rate=8000, hop_length=16)
    features = extractor([np.full(100, 0.5), np.full((2, 30), 0.25)], sampling_rate=8000)
    assert features["input_values"].shape == (2, 1, 112)  # 100 rounded up to a multiple of 16
    assert features["padding_mask"].sum(-1).tolist() == [100, 30]
    assert torch.all(features["input_values"][1, :, :30] == 0.25) and torch.all(
        features["input_values"][1, :, 30:] == 0
    )
    assert features["input_values"].dtype == torch.float32


def test_the_feature_extractor_sets_the_level_the_model_expects():
    extractor = VQVAEFeatureExtractor(feature_size=2, sampling_rate=8000, peak_level=0.5)
    values = extractor(np.array([0.1, -0.2, 0.05]), sampling_rate=8000)["input_values"]
    assert values.shape == (1, 2, 3)  # mono repeated to the model's two channels
    torch.testing.assert_close(values[0, 0], torch.tensor([0.25, -0.5, 0.125]))


def test_the_feature_extractor_is_the_data_paths_preprocessing(tmp_path):
    config = tiny_config("audio", sampling_rate=8000, audio_peak_level=0.9)
    waveform = np.random.default_rng(0).uniform(-0.3, 0.3, (2, 700)).astype(np.float32)
    soundfile.write(tmp_path / "take.wav", waveform.T, 8000, subtype="FLOAT")
    expected = build_preprocessor(config, train=False).load_waveform(str(tmp_path / "take.wav"))
    features = processor_for(config)(waveform, sampling_rate=8000)["input_values"][0]
    torch.testing.assert_close(features[:, : expected.shape[-1]], expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize(
    ("audio", "rate", "message"),
    [
        (np.zeros(10), 16000, "takes audio at 8000 Hz, got sampling_rate=16000: resample it first"),
        (np.zeros((3, 10)), 8000, "cannot mix 3 audio channels to 2"),
        (np.zeros(10, np.int16), 8000, "integer samples"),
        (np.zeros((2, 2, 2)), 8000, r"shape \(2, 2, 2\)"),
        ([], 8000, "raw_audio is empty"),
    ],
)
def test_the_feature_extractor_refuses_what_the_model_cannot_take(audio, rate, message):
    with pytest.raises(ValueError, match=message):
        VQVAEFeatureExtractor(feature_size=2, sampling_rate=8000)(audio, sampling_rate=rate)


def test_the_video_processor_takes_the_first_frames_and_refuses_short_clips():
    config = tiny_config("video")  # 4 frames of 16x16
    processor = processor_for(config)
    frames = [random_image(16, 16, seed=seed) for seed in range(6)]
    pixel_values = processor(frames)["pixel_values"]
    assert pixel_values.shape == (1, 4, 3, 16, 16)
    assert torch.equal(
        pixel_values[0], VQVAEImageProcessor(size={"height": 16, "width": 16})(frames[:4])["pixel_values"]
    )
    batch = processor([frames[:4], np.stack([np.asarray(f) for f in frames[2:6]])])["pixel_values"]
    assert torch.equal(batch[0], pixel_values[0]) and batch.shape == (2, 4, 3, 16, 16)
    assert [len(clip) for clip in processor.postprocess(batch)] == [4, 4]
    assert processor.postprocess(batch, "np")[0].shape == (4, 16, 16, 3)
    with pytest.raises(
        ValueError, match="A clip of 3 frames is too short: this model takes 4 frames at 8 fps"
    ):
        processor(frames[:3])
