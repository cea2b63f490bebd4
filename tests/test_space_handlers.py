"""The Space's handlers without a browser: seeds, uploads and the code-grid picture, and one sample and one encode on
the released CIFAR-10 model (the browser test, tests/test_space_browser.py, drives the same through the page)."""

import sys
import wave
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

pytest.importorskip("gradio")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "space"))
import handlers  # noqa: E402


def test_seeds_must_be_whole_numbers():
    assert handlers.parse_seed(" 12 ") == 12
    with pytest.raises(ValueError, match="The seed must be a whole number, such as 0 or 1234; got 'x1'"):
        handlers.parse_seed("x1")


def test_uploads_must_exist_have_content_and_recordings_last_at_most_a_minute(tmp_path):
    with pytest.raises(ValueError, match="Upload a file first"):
        handlers.checked_upload(None, "image")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match="'empty.png' is empty"):
        handlers.checked_upload(str(tmp_path / "empty.png"), "image")
    with wave.open(str(tmp_path / "long.wav"), "wb") as recording:
        recording.setnchannels(1)
        recording.setsampwidth(2)
        recording.setframerate(1000)
        recording.writeframes(bytes(2 * 1000 * 90))
    with pytest.raises(ValueError, match="1.5 minutes long; this demo takes up to 60 s"):
        handlers.checked_upload(str(tmp_path / "long.wav"), "audio")


@pytest.mark.parametrize(
    ("shape", "size"), [((8, 8), (128, 128)), ((250,), (1000, 4)), ((2, 4, 4), (128, 64))]
)
def test_the_code_grid_is_drawn_one_colour_per_code(shape, size):
    codes = torch.arange(int(np.prod(shape))).reshape(shape) % 16
    image = handlers.code_grid_image(codes, 16)
    assert image.size == size and len(image.getcolors(maxcolors=4096)) == min(16, codes.numel())


def test_sampling_and_encoding_the_released_image_model(tmp_path):
    if "vqvae-cifar10" not in handlers.model_locations():
        pytest.skip("the released vqvae-cifar10 folder is not here")
    picture, audio, status = handlers.sample(
        "vqvae-cifar10", "cat", None, 12.0, "cosine", 1.0, "0", 2, None, str(tmp_path)
    )
    assert audio is None and "2 sample(s)" in status and PIL.Image.open(picture).size == (256, 128)
    PIL.Image.new("RGB", (40, 30), (200, 30, 30)).save(tmp_path / "red.png")
    pair, _, _, grid, summary = handlers.encode("vqvae-cifar10", str(tmp_path / "red.png"), str(tmp_path))
    assert PIL.Image.open(pair).size == (256, 128) and grid.size == (128, 128)
    assert "**64 codes**" in summary and "PSNR" in summary


def test_speech_and_video_models_sample_and_encode(tmp_path):
    names = handlers.model_locations()
    if not {"vqvae-fsdd", "vqvae-moving-fmnist"} <= names.keys():
        pytest.skip("the released speech and video folders are not here")
    _, (rate, audio), status = handlers.sample(
        "vqvae-fsdd", "7", "theo", 4.0, "constant", 1.0, "0", 2, None, str(tmp_path)
    )
    assert rate == 8000 and audio.dtype == np.int16 and len(audio) > 2 * 4096 and "2 sample(s)" in status
    with wave.open(str(tmp_path / "take.wav"), "wb") as recording:
        recording.setnchannels(1)
        recording.setsampwidth(2)
        recording.setframerate(8000)
        recording.writeframes((np.sin(np.arange(4000) * 0.3) * 8000).astype(np.int16).tobytes())
    picture, original, reconstruction, _, summary = handlers.encode(
        "vqvae-fsdd", str(tmp_path / "take.wav"), str(tmp_path)
    )
    assert picture is None and original[0] == reconstruction[0] == 8000 and "SNR" in summary
    clips, _, _ = handlers.sample(
        "vqvae-moving-fmnist", None, None, 1.0, "constant", 1.0, "0", 2, None, str(tmp_path)
    )
    animation = PIL.Image.open(clips)
    assert animation.n_frames == 16 and animation.size == (256, 128)
