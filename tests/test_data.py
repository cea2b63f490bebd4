"""Tests of `hf_vqvae.data`: loading, per-modality preprocessing, robustness, built-in datasets.

Run with HF_HUB_OFFLINE=1. Tests on the shared real data skip when it is absent.
"""

import gzip
import io
import json
import logging
import struct
from pathlib import Path

import av
import numpy as np
import PIL.Image
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile
import torch
from datasets import Array3D, ClassLabel, Dataset, Features, IterableDataset, List
from datasets import Image as ImageFeature
from torch.utils.data import DataLoader

from hf_vqvae import VQVAEConfig
from hf_vqvae.data import (
    SHAPE_KINDS,
    TONE_KINDS,
    AudioPreprocessor,
    BadExampleError,
    BadExampleTracker,
    ImagePreprocessor,
    TooManyBadExamplesError,
    VideoPreprocessor,
    bouncing_trajectories,
    build_preprocessor,
    collate_examples,
    decode_audio,
    decode_video,
    disable_media_decoding,
    load_raw_dataset,
    make_moving_mnist,
    merge_windows,
    mix_channels,
    prepare_dataset,
    read_fashion_mnist,
    read_idx,
    resample,
    resolve_data_column,
    resolve_label_names,
    split_into_windows,
    split_train_validation,
)
from hf_vqvae.data import video as video_module
from hf_vqvae.data.audio import _read_with_pyav
from hf_vqvae.data.video import encode_video

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CIFAR10 = SHARED_DATA / "cifar10" / "train.parquet"
FSDD = SHARED_DATA / "fsdd" / "train.parquet"


# --------------------------------------------------------------------------- helpers


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PIL.Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def wav_bytes(waveform: np.ndarray, sampling_rate: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, sampling_rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def sine(frequency: float, sampling_rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    return (
        amplitude * np.sin(2 * np.pi * frequency * np.arange(int(seconds * sampling_rate)) / sampling_rate)
    ).astype(np.float32)


def peak_frequency(waveform: np.ndarray, sampling_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(waveform))
    return float(np.fft.rfftfreq(len(waveform), 1 / sampling_rate)[spectrum.argmax()])


def write_mp4(path: Path, frames: np.ndarray, fps: int) -> None:
    """Frames uint8 (T, H, W, 3) -> MPEG-4 Part 2 video (lossy)."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width, stream.pix_fmt = frames.shape[1], frames.shape[2], "yuv420p"
        stream.options = {"qscale": "2"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def solid(colour, height=8, width=8) -> np.ndarray:
    return np.broadcast_to(np.array(colour, dtype=np.uint8), (height, width, 3)).copy()


def image_dataset(colours, labels=None) -> Dataset:
    data = {"image": [{"bytes": png_bytes(solid(colour)), "path": None} for colour in colours]}
    features = {"image": ImageFeature()}
    if labels is not None:
        data["label"], features["label"] = labels, ClassLabel(names=["a", "b"])
    return Dataset.from_dict(data, features=Features(features))


def loader_batches(dataset, batch_size=4):
    return list(DataLoader(dataset, batch_size=batch_size, collate_fn=collate_examples))


# --------------------------------------------------------------------------- loading


def test_load_imagefolder_with_labels_and_preprocess(tmp_path):
    for label, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
        (tmp_path / label).mkdir()
        for index in range(3):
            PIL.Image.fromarray(solid(colour, 40, 60)).save(tmp_path / label / f"{index}.png")
    raw = load_raw_dataset(train_data_dir=tmp_path, modality="image", cache_dir=str(tmp_path / "cache"))
    assert len(raw) == 6
    assert resolve_label_names(raw, "label") == ["cat", "dog"]
    dataset = prepare_dataset(raw, ImagePreprocessor((16, 16)), label_column="label")
    (batch,) = loader_batches(dataset, batch_size=6)
    assert batch["pixel_values"].shape == (6, 3, 16, 16)
    expected = {0: torch.tensor([1.0, -1.0, -1.0]), 1: torch.tensor([-1.0, -1.0, 1.0])}  # red cats, blue dogs
    for pixels, label in zip(batch["pixel_values"], batch["class_labels"].tolist(), strict=True):
        torch.testing.assert_close(pixels.mean(dim=(1, 2)), expected[label])


def test_load_image_parquet_map_style_and_streaming(tmp_path):
    path = tmp_path / "images.parquet"
    image_dataset([(255, 0, 0), (0, 255, 0), (0, 0, 255)], labels=[0, 1, 0]).to_parquet(str(path))
    map_style = load_raw_dataset(data_files=str(path), cache_dir=str(tmp_path / "cache"))
    streaming = load_raw_dataset(data_files=str(path), streaming=True)
    assert isinstance(map_style, Dataset) and isinstance(streaming, IterableDataset)
    assert isinstance(map_style.features["image"], ImageFeature)
    batches = [
        loader_batches(prepare_dataset(raw, ImagePreprocessor((8, 8)), label_column="label"))[0]
        for raw in (map_style, streaming)
    ]
    torch.testing.assert_close(batches[0]["pixel_values"], batches[1]["pixel_values"])
    assert batches[0]["class_labels"].tolist() == [0, 1, 0]
    torch.testing.assert_close(batches[0]["pixel_values"][1, :, 0, 0], torch.tensor([-1.0, 1.0, -1.0]))


def test_load_audio_parquet_written_with_pyarrow(tmp_path):
    """An audio column of {bytes, path} structs (as `Audio(decode=False)` gives), written by pyarrow alone."""
    recordings = [wav_bytes(sine(frequency, 16000, 0.5), 16000) for frequency in (400, 800)]
    table = pa.table(
        {
            "audio": pa.array(
                [{"bytes": data, "path": f"{index}.wav"} for index, data in enumerate(recordings)],
                type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
            ),
            "label": pa.array([3, 7], type=pa.int64()),
        }
    )
    pq.write_table(table, tmp_path / "audio.parquet")
    for streaming in (False, True):
        raw = load_raw_dataset(
            data_files=str(tmp_path / "audio.parquet"), streaming=streaming, cache_dir=str(tmp_path)
        )
        dataset = prepare_dataset(raw, AudioPreprocessor(8000, 4000), label_column="label")
        (batch,) = loader_batches(dataset)
        assert batch["input_values"].shape == (2, 1, 4000)  # 0.5 s at 8 kHz
        assert batch["class_labels"].tolist() == [3, 7]
        frequencies = [peak_frequency(waveform[0].numpy(), 8000) for waveform in batch["input_values"]]
        assert frequencies == pytest.approx([400, 800], abs=2)


def test_load_audio_folder_labels_from_subfolders(tmp_path):
    for label in ("high", "low"):
        (tmp_path / "train" / label).mkdir(parents=True)
        soundfile.write(tmp_path / "train" / label / "a.wav", sine(440, 8000, 0.25), 8000)
    (tmp_path / "train" / "notes.txt").write_text("not audio")
    (tmp_path / "train" / "high" / "._a.wav").write_bytes(b"\0\5\x16\7")  # a macOS resource fork: skipped
    raw = load_raw_dataset(train_data_dir=tmp_path, modality="audio")  # reads the train/ sub-folder
    assert resolve_label_names(raw, "label") == ["high", "low"]
    assert [Path(value["path"]).parent.name for value in raw["audio"]] == ["high", "low"]
    waveform = AudioPreprocessor(8000, 1000)(raw[0]["audio"])
    assert waveform.shape == (1, 1000)
    with pytest.raises(ValueError, match="No 'validation' sub-folder"):
        load_raw_dataset(train_data_dir=tmp_path, modality="audio", split="validation")
    with pytest.raises(ValueError, match="No video files"):
        load_raw_dataset(train_data_dir=tmp_path, modality="video")
    with pytest.raises(ValueError, match="needs modality"):
        load_raw_dataset(train_data_dir=tmp_path)


def test_load_video_folder_and_decode_mp4(tmp_path):
    """12 frames whose brightness encodes their index, at 8 fps: the centred clip holds frames 2..9."""
    frames = np.stack([solid((20 * index,) * 3, 32, 32) for index in range(12)])
    (tmp_path / "ramp").mkdir()
    write_mp4(tmp_path / "ramp" / "clip.mp4", frames, fps=8)
    raw = load_raw_dataset(train_data_dir=tmp_path, modality="video")
    assert resolve_label_names(raw, "label") == ["ramp"]
    clip = VideoPreprocessor(num_frames=8, size=(16, 16), fps=8)(raw[0]["video"])
    assert clip.shape == (8, 3, 16, 16)
    brightness = (clip.mean(dim=(1, 2, 3)) + 1) * 127.5 / 20  # back to frame indices
    torch.testing.assert_close(brightness, torch.arange(2.0, 10.0), atol=0.3, rtol=0)
    # At 4 fps every second source frame: 4 frames span 7 source frames, centred -> 2, 4, 6, 8.
    slow = VideoPreprocessor(num_frames=4, size=(16, 16), fps=4)(raw[0]["video"])
    torch.testing.assert_close(
        (slow.mean(dim=(1, 2, 3)) + 1) * 127.5 / 20, torch.tensor([2.0, 4, 6, 8]), atol=0.3, rtol=0
    )
    with pytest.raises(BadExampleError, match="needs 15"):
        VideoPreprocessor(num_frames=8, size=(16, 16), fps=4)(raw[0]["video"])


def test_load_raw_dataset_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        load_raw_dataset(dataset_name="builtin:shapes", data_files="x.parquet")
    with pytest.raises(ValueError, match="exactly one"):
        load_raw_dataset()
    with pytest.raises(ValueError, match="extensions"):
        load_raw_dataset(data_files=["a.parquet", "b.txt"])
    with pytest.raises(ValueError, match=r"extensions.*got \['.parquet', '.txt.gz'\]"):
        load_raw_dataset(data_files=["a.parquet", "b.txt.gz"])
    with pytest.raises(ValueError, match=r"CSV and JSON optionally compressed.*got \['.parquet.gz'\]"):
        load_raw_dataset(data_files=["a.parquet.gz"])


def test_compressed_data_files_load(tmp_path):
    rows = [
        {"audio": {"array": [0.1 * index, 0.0], "sampling_rate": 8000}, "label": index} for index in range(3)
    ]
    with gzip.open(tmp_path / "part-0.jsonl.gz", "wt") as file:
        file.write("\n".join(json.dumps(row) for row in rows[:2]))
    (tmp_path / "part-1.jsonl").write_text(json.dumps(rows[2]))
    files = [str(tmp_path / "part-0.jsonl.gz"), str(tmp_path / "part-1.jsonl")]
    raw = load_raw_dataset(data_files=files)
    assert raw["label"] == [0, 1, 2]
    assert [row["label"] for row in load_raw_dataset(data_files=files, streaming=True)] == [0, 1, 2]
    with pytest.raises(ValueError, match="builtin:shapes, builtin:tones"):
        load_raw_dataset(dataset_name="builtin:nope")


# --------------------------------------------------------------------------- real shared data


def test_cifar10_images_preprocess_to_model_inputs():
    if not CIFAR10.exists():
        pytest.skip(f"shared CIFAR-10 not found at {CIFAR10}")
    raw = load_raw_dataset(data_files=str(CIFAR10), streaming=True).take(4)
    assert resolve_data_column(raw, "image") == "img"  # found by its Image feature
    assert resolve_label_names(raw, "label")[:3] == ["airplane", "automobile", "bird"]
    dataset = prepare_dataset(
        raw, build_preprocessor(VQVAEConfig(modality="image"), train=False), label_column="label"
    )
    (batch,) = loader_batches(dataset)
    pixels = batch["pixel_values"]
    assert pixels.shape == (4, 3, 32, 32) and pixels.dtype == torch.float32
    assert pixels.min() >= -1 and pixels.max() <= 1 and pixels.std() > 0.1
    first_jpeg = next(iter(disable_media_decoding(raw)))["img"]["bytes"]
    raw_pixels = torch.tensor(np.array(PIL.Image.open(io.BytesIO(first_jpeg))), dtype=torch.float32)
    torch.testing.assert_close(pixels[0], raw_pixels.permute(2, 0, 1) / 127.5 - 1)


def test_fsdd_recordings_decode_at_8khz_and_window():
    if not FSDD.exists():
        pytest.skip(f"shared FSDD not found at {FSDD}")
    raw = disable_media_decoding(load_raw_dataset(data_files=str(FSDD), streaming=True)).take(3)
    preprocessor = AudioPreprocessor(sampling_rate=8000, num_samples=2048)
    for example in raw:
        waveform, sampling_rate = decode_audio(example["audio"])
        assert sampling_rate == 8000 and waveform.shape[0] == 1 and 1500 < waveform.shape[1] < 8000
        recording = preprocessor.load_waveform(example["audio"])
        torch.testing.assert_close(recording, torch.from_numpy(waveform))  # already 8 kHz mono
        windows = split_into_windows(recording, 2048)
        assert windows.shape == (-(-recording.shape[1] // 2048), 1, 2048)
        torch.testing.assert_close(merge_windows(windows, recording.shape[1]), recording)
        assert preprocessor(example["audio"]).shape == (1, 2048)


# --------------------------------------------------------------------------- audio


def test_resample_16k_to_8k_halves_length_and_keeps_frequency():
    waveform = sine(440, 16000, 1.0)[None]
    resampled = resample(waveform, 16000, 8000)
    assert resampled.shape == (1, 8000) and resampled.dtype == np.float32
    assert peak_frequency(resampled[0], 8000) == pytest.approx(440, abs=1)
    assert np.abs(resampled[0, 100:-100]).max() == pytest.approx(0.5, abs=0.01)


def test_mix_channels():
    stereo = np.stack([np.full(4, 1.0), np.full(4, 0.5)]).astype(np.float32)
    np.testing.assert_allclose(mix_channels(stereo, 1), np.full((1, 4), 0.75))
    np.testing.assert_allclose(mix_channels(stereo[:1], 2), np.stack([np.ones(4)] * 2))
    assert mix_channels(stereo, 2) is stereo
    with pytest.raises(ValueError, match="cannot mix 3"):
        mix_channels(np.zeros((3, 4), np.float32), 2)


def test_audio_windows_pad_crop_and_random_start():
    ramp = {"array": np.arange(10) / 10, "sampling_rate": 8000}
    padded = AudioPreprocessor(8000, 16)(ramp)
    torch.testing.assert_close(padded[0, :10], torch.arange(10) / 10)
    torch.testing.assert_close(padded[0, 10:], torch.zeros(6))  # short recordings padded at the end
    torch.testing.assert_close(
        AudioPreprocessor(8000, 4)(ramp), torch.tensor([[0.3, 0.4, 0.5, 0.6]])
    )  # centred
    starts = set()
    for seed in range(30):
        torch.manual_seed(seed)  # random windows come from torch's global RNG (checkpointed by Accelerate)
        window = AudioPreprocessor(8000, 4, random_window=True)(ramp)
        torch.manual_seed(seed)
        torch.testing.assert_close(AudioPreprocessor(8000, 4, random_window=True)(ramp), window)
        torch.testing.assert_close(window[0], window[0, 0] + torch.arange(4) / 10)  # contiguous
        starts.add(round(float(window[0, 0]) * 10))
    assert starts == set(range(7))  # every valid start
    windows = split_into_windows(torch.arange(10.0)[None], 4)
    assert windows.shape == (3, 1, 4) and windows[2, 0].tolist() == [8, 9, 0, 0]


def test_audio_peak_level_scales_each_recording_to_one_loudness():
    quiet = {"array": np.array([0.0, 0.02, -0.04, 0.01]), "sampling_rate": 8000}
    scaled = AudioPreprocessor(8000, 4, peak_level=0.9)(quiet)
    torch.testing.assert_close(scaled, torch.tensor([[0.0, 0.45, -0.9, 0.225]]))
    silence = {"array": np.zeros(4), "sampling_rate": 8000}
    torch.testing.assert_close(AudioPreprocessor(8000, 4, peak_level=0.9)(silence), torch.zeros(1, 4))
    config = VQVAEConfig(modality="audio", sample_size=4, downsample_factors=4, audio_peak_level=0.5)
    assert build_preprocessor(config, train=False)(quiet).abs().max().item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"audio_peak_level must lie in \(0, 1\]"):
        VQVAEConfig(modality="audio", audio_peak_level=1.5)


def test_decode_audio_inputs_and_pyav_fallback():
    waveform, rate = decode_audio({"array": np.zeros((2, 5)), "sampling_rate": 16000})
    assert waveform.shape == (2, 5) and waveform.dtype == np.float32 and rate == 16000
    # AAC in MP4: libsndfile cannot read it, FFmpeg (PyAV) can.
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(sine(440, 8000, 1.0)[None], format="fltp", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(soundfile.SoundFileError):
        soundfile.read(io.BytesIO(buffer.getvalue()))
    waveform, rate = decode_audio({"bytes": buffer.getvalue(), "path": None})
    assert rate == 8000 and waveform.shape[0] == 1 and 8000 <= waveform.shape[1] < 10000
    assert peak_frequency(waveform[0], 8000) == pytest.approx(440, abs=2)
    bad_values = [b"not audio", {"bytes": None, "path": None}, {"array": [np.nan], "sampling_rate": 8000}]
    for bad in [*bad_values, {"array": "abc", "sampling_rate": 8000}, {"array": [0.1]}, "missing.wav"]:
        with pytest.raises(BadExampleError):
            decode_audio(bad)


# --------------------------------------------------------------------------- image


def test_image_resize_to_cover_and_centre_or_random_crop():
    """A 40x80 image, black left half, white right half, resized to 20x40 then cropped to 20x20."""
    image = np.zeros((40, 80, 3), np.uint8)
    image[:, 40:] = 255
    centre = ImagePreprocessor((20, 20))(image)
    assert centre.shape == (3, 20, 20)
    torch.testing.assert_close(centre[:, :, :8], torch.full((3, 20, 8), -1.0))  # columns 10..18 of 40: black
    torch.testing.assert_close(centre[:, :, 12:], torch.full((3, 20, 8), 1.0))  # columns 22..30: white
    generator = torch.Generator().manual_seed(0)
    crops = [ImagePreprocessor((20, 20), random_crop=True, generator=generator)(image) for _ in range(20)]
    assert len({float(crop.mean()) for crop in crops}) > 5  # crops at different offsets
    again = ImagePreprocessor((20, 20), random_crop=True, generator=torch.Generator().manual_seed(0))(image)
    torch.testing.assert_close(again, crops[0])


def test_image_channels_and_inputs():
    gray = np.full((6, 6), 255, np.uint8)
    assert ImagePreprocessor((6, 6), channels=3)(gray).shape == (3, 6, 6)
    rgb = PIL.Image.fromarray(solid((255, 255, 255), 6, 6))
    torch.testing.assert_close(ImagePreprocessor((6, 6), channels=1)(rgb), torch.ones(1, 6, 6))
    assert ImagePreprocessor((6, 6))(png_bytes(solid((0, 0, 0), 6, 6))).shape == (3, 6, 6)
    for bad in (b"not an image", np.zeros((2, 2, 2, 3), np.uint8), np.zeros((4, 4), np.float32), None):
        with pytest.raises(BadExampleError):
            ImagePreprocessor((6, 6))(bad)
    with pytest.raises(ValueError, match="channels"):
        ImagePreprocessor((6, 6), channels=2)


# --------------------------------------------------------------------------- video


def test_video_arrays_and_lossless_encoding():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(5, 8, 8, 3), dtype=np.uint8)
    decoded, fps = decode_video({"bytes": encode_video(frames, fps=8), "path": None})
    np.testing.assert_array_equal(decoded, frames)
    assert fps == 8
    clip = VideoPreprocessor(num_frames=3, size=(8, 8), channels=1)(frames[..., 0])  # (T, H, W) gray array
    assert clip.shape == (3, 1, 8, 8)
    torch.testing.assert_close(clip[:, 0], torch.from_numpy(frames[1:4, ..., 0]).float() / 127.5 - 1)
    with pytest.raises(BadExampleError, match="5 frames"):
        VideoPreprocessor(num_frames=6, size=(8, 8))(frames)
    for bad in (b"not a video", "missing.mp4", [[[0]], [[0, 1]]], np.zeros((0, 4, 4, 3), np.uint8)):
        with pytest.raises(BadExampleError):
            decode_video(bad)


def mkv_without_frame_count(num_frames: int) -> bytes:
    """A Matroska file, whose container states no frame count (PyAV's `stream.frames` is 0)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        for index in range(num_frames):
            image = np.full((16, 16, 3), index * 20, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return buffer.getvalue()


class FrameCounting:
    """Chooses frames [2, 3, 3, 5] and records the (count, fps) it was asked with."""

    def __init__(self):
        self.calls = []

    def __call__(self, num_available, fps):
        self.calls.append((num_available, fps))
        return [2, 3, 3, 5]


def test_a_chosen_clip_converts_only_its_frames(monkeypatch):
    frames = np.random.default_rng(0).integers(0, 256, size=(12, 8, 8, 3), dtype=np.uint8)
    converted = []
    real_to_ndarray = av.VideoFrame.to_ndarray
    monkeypatch.setattr(
        av.VideoFrame, "to_ndarray", lambda f, **kw: converted.append(1) or real_to_ndarray(f, **kw)
    )
    choose = FrameCounting()
    clip, fps = decode_video(encode_video(frames, fps=8), choose)
    np.testing.assert_array_equal(clip, frames[[2, 3, 3, 5]])  # order and repeats kept
    assert choose.calls == [(12, 8.0)] and fps == 8  # the AVI states its frame count: one pass
    assert len(converted) == 3  # frames 2, 3 and 5 only
    np.testing.assert_array_equal(decode_video(frames, choose)[0], frames[[2, 3, 3, 5]])  # arrays too


def test_a_chosen_clip_of_a_file_without_a_frame_count():
    data = mkv_without_frame_count(10)
    choose = FrameCounting()
    clip, _ = decode_video(data, choose)
    assert choose.calls == [(10, 8.0)]  # counted by decoding
    np.testing.assert_array_equal(clip, decode_video(data)[0][[2, 3, 3, 5]])


class StatedFrameCount:
    """An opened container whose video stream states `stated` frames, whatever the file holds."""

    def __init__(self, container, stated: int):
        self.container, self.stated = container, stated

    def __enter__(self):
        stream = self.container.__enter__().streams.video[0]
        proxy = type("Stream", (), {"frames": self.stated, "average_rate": stream.average_rate})()
        self.streams = type("Streams", (), {"video": [proxy]})()
        self.decode = lambda _: self.container.decode(stream)
        return self

    def __exit__(self, *exc):
        return self.container.__exit__(*exc)


@pytest.mark.parametrize("stated", [5, 12, 24])
def test_a_wrong_stated_frame_count_gives_the_clip_of_the_real_one(monkeypatch, stated):
    frames = np.stack([np.full((8, 8, 3), 10 * index, np.uint8) for index in range(20)])
    data = encode_video(frames)
    expected = VideoPreprocessor(num_frames=8, size=(8, 8))(frames)  # the centred clip: frames 6..13
    real_open = video_module._open_container
    monkeypatch.setattr(
        video_module, "_open_container", lambda value: StatedFrameCount(real_open(value), stated)
    )
    counts = []
    clip, _ = decode_video(data, lambda n, fps: counts.append(n) or range(n - 2, n))
    assert counts == [stated, 20]  # chose from the stated count, found 20, chose again
    np.testing.assert_array_equal(clip, frames[18:])
    torch.testing.assert_close(VideoPreprocessor(num_frames=8, size=(8, 8))(data), expected)
    with pytest.raises(BadExampleError, match="20 frames; a clip of 21 frames needs 21"):
        VideoPreprocessor(num_frames=21, size=(8, 8))(data)


@pytest.mark.parametrize("picks", [[], [-1], [4]], ids=str)
def test_a_chooser_must_pick_frames_inside_the_video(picks):
    frames = np.zeros((4, 8, 8, 3), np.uint8)
    for value in (frames, encode_video(frames), [PIL.Image.fromarray(frame) for frame in frames]):
        with pytest.raises(ValueError, match=r"choose_frames must pick at least one frame index in \[0, 4\)"):
            decode_video(value, lambda n, fps: picks)


def test_a_list_of_frame_images_is_a_video_column():
    frames = np.random.default_rng(0).integers(0, 256, size=(4, 8, 8, 3), dtype=np.uint8)
    raw = Dataset.from_dict(
        {"clip": [[PIL.Image.fromarray(frame) for frame in frames]]},
        features=Features({"clip": List(ImageFeature())}),
    )
    assert resolve_data_column(raw, "video") == "clip"  # found by its feature
    undecoded = disable_media_decoding(raw)
    assert undecoded.features["clip"] == List(ImageFeature(decode=False))
    preprocess = VideoPreprocessor(num_frames=2, size=(8, 8))
    torch.testing.assert_close(preprocess(undecoded[0]["clip"]), preprocess(frames))  # frames 1 and 2
    torch.testing.assert_close(preprocess(raw[0]["clip"]), preprocess(frames))  # decoded PIL frames too
    with pytest.raises(BadExampleError, match="cannot decode image"):
        preprocess([{"bytes": b"not a frame", "path": None}] * 4)
    with pytest.raises(BadExampleError, match="frames of several sizes"):
        decode_video([PIL.Image.new("RGB", (8, 8)), PIL.Image.new("RGB", (8, 9))])


def test_array3d_columns_are_images_or_grey_videos_by_their_last_axis():
    grey_videos = Dataset.from_dict(
        {"frames": [np.zeros((4, 8, 8), np.uint8)]},
        features=Features({"frames": Array3D((4, 8, 8), "uint8")}),
    )
    images = Dataset.from_dict(
        {"pixels": [np.zeros((8, 8, 3), np.uint8)]},
        features=Features({"pixels": Array3D((8, 8, 3), "uint8")}),
    )
    assert resolve_data_column(grey_videos, "video") == "frames"
    assert resolve_data_column(images, "image") == "pixels"
    with pytest.raises(ValueError, match="holds image data"):
        resolve_data_column(images, "video", "pixels")
    clip = VideoPreprocessor(num_frames=4, size=(8, 8), channels=1)(grey_videos[0]["frames"])
    assert clip.shape == (4, 1, 8, 8)


# --------------------------------------------------------------------------- built-in datasets


@pytest.mark.parametrize(
    "name, options, config, shape",
    [
        ("builtin:shapes", {"image_size": 16}, {"modality": "image", "sample_size": [16, 16]}, (3, 16, 16)),
        (
            "builtin:tones",
            {"duration": 0.25},
            {"modality": "audio", "sampling_rate": 8000, "sample_size": [2048]},
            (1, 2048),
        ),
        (
            "builtin:sprites",
            {"num_frames": 4, "frame_size": 16},
            {"modality": "video", "sample_size": [4, 16, 16]},
            (4, 3, 16, 16),
        ),
        (
            "builtin:moving-mnist",
            {"num_frames": 4, "canvas_size": 32},
            {"modality": "video", "in_channels": 1, "sample_size": [4, 32, 32]},
            (4, 1, 32, 32),
        ),
    ],
)
def test_builtin_datasets_are_deterministic_and_preprocess(name, options, config, shape):
    first, again, other = (
        load_raw_dataset(dataset_name=name, builtin_options={"num_examples": 6, "seed": seed, **options})
        for seed in (0, 0, 1)
    )
    assert first.to_dict() == again.to_dict()
    assert first.to_dict() != other.to_dict()
    config = VQVAEConfig(**config)
    assert resolve_data_column(first, config.modality) == config.modality  # the default column per modality
    label_column = "label" if "label" in first.column_names else None
    dataset = prepare_dataset(first, build_preprocessor(config, train=True), label_column=label_column)
    (batch,) = loader_batches(dataset, batch_size=6)
    inputs = batch["input_values" if config.modality == "audio" else "pixel_values"]
    assert inputs.shape == (6, *shape) and inputs.dtype == torch.float32
    assert -1 <= inputs.min() < inputs.max() <= 1


def test_builtin_labels_and_tone_content():
    shapes = load_raw_dataset(dataset_name="builtin:shapes", builtin_options={"num_examples": 40})
    assert resolve_label_names(shapes, "label") == list(SHAPE_KINDS)
    assert set(shapes["label"]) == set(range(len(SHAPE_KINDS)))
    tones = load_raw_dataset(dataset_name="builtin:tones", builtin_options={"num_examples": 12})
    assert resolve_label_names(tones, "label") == list(TONE_KINDS)
    for example in tones:
        waveform, rate = decode_audio(example["audio"])
        assert rate == 8000 and waveform.shape == (1, 8000)
        assert 0.3 - 1e-3 <= np.abs(waveform).max() <= 0.9 + 1e-3  # peak amplitude as documented
        assert np.abs(waveform[0, -40:]).max() < 1e-3  # the envelope released before the end: no click


def test_moving_mnist_sprites_stay_inside_the_canvas():
    trajectory = bouncing_trajectories(np.random.default_rng(0), 500, 8, extent=36.0)
    assert trajectory.shape == (500, 8, 2)
    assert trajectory.min() >= 0 and trajectory.max() <= 36
    steps = np.linalg.norm(np.diff(trajectory, axis=0), axis=-1)
    assert steps.max() <= 5 + 1e-9 and (trajectory.max(axis=0) - trajectory.min(axis=0)).min() > 20  # bounces
    # One fully white 28x28 sprite: every frame must show all 784 of its pixels (never clipped by a border).
    sprites = np.full((3, 28, 28), 255, np.uint8)
    videos = make_moving_mnist(sprites, num_examples=3, num_frames=20, num_sprites=1, seed=0)
    for value in videos["video"]:
        frames, _ = decode_video(value)
        assert frames.shape == (20, 64, 64, 3)
        assert ((frames[..., 0] == 255).sum(axis=(1, 2)) == 784).all()
        assert len({tuple(np.argwhere(frame[..., 0])[0]) for frame in frames}) > 10  # it moves
    # Any image source works, e.g. a datasets.Dataset with an image column, max-composited.
    source = Dataset.from_dict(
        {"image": [PIL.Image.fromarray(np.full((10, 10), 100, np.uint8))]},
        features=Features({"image": ImageFeature()}),
    )
    frames, _ = decode_video(make_moving_mnist(source, 1, num_frames=2, canvas_size=20)[0]["video"])
    assert set(np.unique(frames[..., 0])) <= {0, 100} and frames.max() == 100


@pytest.mark.parametrize(
    "options, message",
    [
        ({"canvas_size": 32}, "canvas_size must be at least 33"),
        ({"num_frames": 0}, "must be at least 1, got 2, 0 and 2"),
    ],
)
def test_moving_mnist_rejects_a_canvas_too_small_and_empty_clips(options, message):
    with pytest.raises(ValueError, match=message):
        make_moving_mnist(np.zeros((3, 28, 28), np.uint8), 2, **options)


def test_read_idx_and_fashion_mnist_layout(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    header = struct.pack(">BBBBIII", 0, 0, 0x08, 3, 2, 3, 4)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + images.tobytes()))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(
        struct.pack(">BBBBI", 0, 0, 0x08, 1, 2) + bytes([7, 9])
    )
    read_images, labels = read_fashion_mnist(tmp_path, "train")
    np.testing.assert_array_equal(read_images, images)
    np.testing.assert_array_equal(labels, [7, 9])
    floats = np.array([1.5, -2.0], dtype=">f4")
    (tmp_path / "floats.idx").write_bytes(struct.pack(">BBBBI", 0, 0, 0x0D, 1, 2) + floats.tobytes())
    np.testing.assert_array_equal(read_idx(tmp_path / "floats.idx"), [1.5, -2.0])
    (tmp_path / "short.idx").write_bytes(header + images.tobytes()[:-1])
    with pytest.raises(ValueError, match="announces shape"):
        read_idx(tmp_path / "short.idx")
    (tmp_path / "bad.idx").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad.idx")
    (tmp_path / "cut_header.idx").write_bytes(header[:6])
    with pytest.raises(ValueError, match="header announces 3 sizes but ends after 6 bytes"):
        read_idx(tmp_path / "cut_header.idx")
    (tmp_path / "cut.gz").write_bytes(gzip.compress(header + images.tobytes())[:-8])
    with pytest.raises(ValueError, match="truncated or corrupt gzip"):
        read_idx(tmp_path / "cut.gz")
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        read_fashion_mnist(tmp_path, "test")


# --------------------------------------------------------------------------- robustness


def test_bad_examples_are_skipped_counted_and_reported(caplog):
    raw = image_dataset([(255, 255, 255)] * 10)
    raw = raw.cast_column("image", ImageFeature(decode=False))
    values = list(raw["image"])
    values[3] = {"bytes": b"corrupt", "path": "broken.png"}
    raw = Dataset.from_dict({"image": values}, features=Features({"image": ImageFeature()}))
    tracker = BadExampleTracker(max_bad_fraction=0.2, min_examples=5)
    dataset = prepare_dataset(raw, ImagePreprocessor((8, 8)), tracker=tracker)
    with caplog.at_level(logging.WARNING):
        batches = loader_batches(dataset, batch_size=4)
    assert [len(batch["pixel_values"]) for batch in batches] == [3, 4, 2]
    assert (tracker.num_seen, tracker.num_bad) == (10, 1)
    assert tracker.first_bad[0][0] == "broken.png"
    assert "broken.png" in caplog.text
    assert tracker.summary().startswith("Skipped 1 of 10 examples (10.0%)")


def test_too_many_bad_examples_raise_map_style_and_streaming():
    values = [{"bytes": png_bytes(solid((0, 0, 0))), "path": None}] * 2 + [
        {"bytes": b"bad", "path": None}
    ] * 6
    raw = Dataset.from_dict({"image": values * 3}, features=Features({"image": ImageFeature()}))
    for dataset in (raw, raw.to_iterable_dataset()):
        tracker = BadExampleTracker(max_bad_fraction=0.5, min_examples=8)
        prepared = prepare_dataset(dataset, ImagePreprocessor((8, 8)), tracker=tracker)
        with pytest.raises(TooManyBadExamplesError, match="max_bad_fraction=0.5"):
            loader_batches(prepared, batch_size=8)
        assert (
            tracker.num_seen == 8 and tracker.num_bad == 6
        )  # raised as soon as the minimum count was reached
    with pytest.raises(TooManyBadExamplesError, match="All 2 examples of a batch"):
        collate_examples([{"pixel_values": None}, {"pixel_values": None}])


def test_prepare_does_not_consume_the_global_rng():
    raw = image_dataset([(0, 0, 0)] * 3)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    prepare_dataset(raw, ImagePreprocessor((4, 4), random_crop=True))
    assert torch.equal(torch.get_rng_state(), state)


# --------------------------------------------------------------------------- clear errors before training


def test_unknown_column_lists_the_columns():
    raw = image_dataset([(0, 0, 0)], labels=[0])
    with pytest.raises(ValueError, match=r"'pixels' not found; the dataset has columns \['image', 'label'\]"):
        prepare_dataset(raw, ImagePreprocessor((8, 8)), column="pixels")
    with pytest.raises(ValueError, match="Label column 'class' not found"):
        prepare_dataset(raw, ImagePreprocessor((8, 8)), label_column="class")
    named = Dataset.from_dict({"speaker": ["jo"], "image": raw["image"]})
    with pytest.raises(ValueError, match="class_encode_column"):
        resolve_label_names(named, "speaker")


def test_a_column_named_after_another_modality_says_what_the_data_is():
    tones = load_raw_dataset(
        dataset_name="builtin:tones", builtin_options={"num_examples": 4}
    )  # bytes structs
    with pytest.raises(ValueError, match=r"The data is \['audio'\]: use a model of the data's modality"):
        resolve_data_column(tones, "image")


def test_modality_mismatch_is_reported():
    images = image_dataset([(0, 0, 0)])
    with pytest.raises(
        ValueError, match=r"holds image data .* modality is 'audio'. Columns by modality: \{'image'"
    ):
        prepare_dataset(images, AudioPreprocessor(8000, 100), column="image")
    with pytest.raises(
        ValueError, match=r"holds the audio data: .* \(columns by modality: \{'image': 'image'\}\)"
    ):
        prepare_dataset(images, AudioPreprocessor(8000, 100))
    # Undecoded structs do not tell their modality: the first examples are probed instead.
    tones = load_raw_dataset(dataset_name="builtin:tones", builtin_options={"num_examples": 2})
    with pytest.raises(
        ValueError, match="None of the first 2 examples of column 'audio' can be read as image"
    ):
        prepare_dataset(tones, ImagePreprocessor((8, 8)), column="audio")
    with pytest.raises(ValueError, match="which column holds the video"):
        prepare_dataset(images, VideoPreprocessor(2, (8, 8)))


def test_empty_dataset_is_reported(tmp_path):
    empty = Dataset.from_dict({"image": []}, features=Features({"image": ImageFeature()}))
    empty.to_parquet(str(tmp_path / "empty.parquet"))
    streaming = load_raw_dataset(data_files=str(tmp_path / "empty.parquet"), streaming=True)
    for dataset in (empty, streaming):
        with pytest.raises(ValueError, match="empty"):
            prepare_dataset(dataset, ImagePreprocessor((8, 8)))


# --------------------------------------------------------------------------- splits


def test_validation_split_is_evenly_spread_and_identical_when_streaming():
    labels = np.repeat(np.arange(10), 20)  # sorted by class, as the shared CIFAR-10 parquet
    raw = Dataset.from_dict({"index": list(range(200)), "label": labels.tolist()})
    train, evaluation = split_train_validation(raw, validation_split_percentage=5)
    assert evaluation["index"] == list(range(19, 200, 20))
    assert sorted(set(evaluation["label"])) == list(range(10))  # every class, unlike "the last 5 %"
    assert len(train) == 190 and not set(train["index"]) & set(evaluation["index"])
    stream_train, stream_eval = split_train_validation(
        raw.to_iterable_dataset(), validation_split_percentage=5
    )
    assert [row["index"] for row in stream_eval] == evaluation["index"]
    assert [row["index"] for row in stream_train] == train["index"]
    capped, _ = split_train_validation(raw, 5, max_train_samples=30, seed=0)
    again, _ = split_train_validation(raw, 5, max_train_samples=30, seed=0)
    assert capped["index"] == again["index"] and len(capped) == 30 and len(set(capped["label"])) > 5
    assert split_train_validation(raw, 0)[1] is None
    with pytest.raises(ValueError, match="leaves the train or the validation split empty"):
        split_train_validation(raw.select(range(10)), 5)
    with pytest.raises(ValueError, match=r"\[0, 100\)"):
        split_train_validation(raw, 100)


def test_16_bit_images_are_scaled_to_8_bits_and_32_bit_ones_refused():
    ramp = PIL.Image.fromarray(np.linspace(0, 65535, 16, dtype=np.uint16)[None].repeat(16, 0))
    assert ramp.mode.startswith("I;16")
    row = ImagePreprocessor(size=(16, 16), channels=1)(ramp)[0, 0]
    torch.testing.assert_close(row, torch.linspace(-1, 1, 16), atol=0.01, rtol=0)
    with pytest.raises(BadExampleError, match="mode 'F'.*no known value range"):
        ImagePreprocessor(size=(16, 16))(PIL.Image.new("F", (16, 16), 0.5))


def test_exif_orientation_turns_the_image_upright():
    # Stored 32 wide and 16 high, white on the left, with EXIF orientation 6: shown rotated a quarter turn
    # clockwise, 16 wide and 32 high, white on top.
    stored = PIL.Image.new("L", (32, 16), 0)
    stored.paste(255, (0, 0, 16, 16))
    exif = PIL.Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    stored.save(buffer, format="PNG", exif=exif)
    pixels = ImagePreprocessor(size=(32, 16), channels=1)({"bytes": buffer.getvalue(), "path": None})
    assert pixels[0, :16].mean() > 0.9 and pixels[0, 16:].mean() < -0.9


def test_audio_with_8_channels_decodes_through_pyav(tmp_path):
    # PyAV 18 crashed the process converting planar audio of 8 or more channels.
    soundfile.write(tmp_path / "octo.wav", np.zeros((800, 8), dtype=np.float32), 8000, subtype="FLOAT")
    samples, sampling_rate = _read_with_pyav(tmp_path / "octo.wav")
    assert samples.shape == (8, 800) and sampling_rate == 8000


def test_decoded_audio_arrays_take_integer_pcm_and_soundfiles_layout():
    sine = 0.5 * np.sin(np.arange(800) / 5)
    as_int16 = {"array": (sine * 32768).astype(np.int16), "sampling_rate": 8000}
    waveform, _ = decode_audio(as_int16)
    np.testing.assert_allclose(waveform[0], sine, atol=1e-4)
    # 8-bit WAV is unsigned: 128 is silence.
    as_uint8 = {"array": (sine * 128 + 128).astype(np.uint8), "sampling_rate": 8000}
    waveform, _ = decode_audio(as_uint8)
    np.testing.assert_allclose(waveform[0], sine, atol=1e-2)
    frames_by_channels = {"array": np.stack([sine, -sine], axis=1).astype(np.float32), "sampling_rate": 8000}
    waveform, _ = decode_audio(frames_by_channels)
    assert waveform.shape == (2, 800)
