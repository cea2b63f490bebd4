"""Sample export: [-1, 1] batches to PIL / uint8 / float outputs, and the files written for each modality
(a PNG grid for images, 16-bit WAV for audio, GIF and MP4 for video)."""

import av
import numpy as np
import PIL.Image
import pytest
import soundfile
import torch
from conftest import tiny_config

from hf_vqvae.data import VideoPreprocessor
from hf_vqvae.pipelines.exporting import (
    export_to_mp4,
    save_image_grid,
    save_outputs,
    save_reconstructions,
    save_samples,
)
from hf_vqvae.pipelines.outputs import postprocess_samples

# Signal values and the uint8 levels they are stored as: (x + 1) / 2 * 255 rounded, after clamping to [-1, 1].
VALUES = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]
LEVELS = [0, 0, 64, 128, 191, 255, 255]
UNIT = [0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0]


def image_batch() -> torch.Tensor:
    """(2, 3, 1, 7): sample 0 runs through VALUES in channel 0, their negatives in channel 1 and 0 in
    channel 2; sample 1 is sample 0 negated."""
    row = torch.tensor(VALUES)
    first = torch.stack([row, -row, torch.zeros(7)]).unsqueeze(1)
    return torch.stack([first, -first])


def video_batch() -> torch.Tensor:
    """(1, 7, 3, 2, 2): frame t is VALUES[t] in channel 0, its negative in channel 1, 0 in channel 2."""
    frames = torch.tensor(VALUES).reshape(7, 1, 1, 1) * torch.tensor([1.0, -1.0, 0.0]).reshape(1, 3, 1, 1)
    return frames.expand(7, 3, 2, 2).unsqueeze(0)


def solid_frames(count: int, size=(16, 16)) -> list[PIL.Image.Image]:
    """Distinct solid-colour frames: Pillow merges identical consecutive GIF frames (adding up their
    durations), so a frame count is only checkable on frames that differ."""
    return [PIL.Image.new("RGB", size, (30 * index, 255 - 30 * index, 7 * index)) for index in range(count)]


# ---- postprocess_samples: images


def test_image_np_gives_uint8_levels_per_sample():
    outputs = postprocess_samples(image_batch(), tiny_config("image"), "np")
    assert len(outputs) == 2
    first, second = outputs
    assert first.dtype == np.uint8 and first.shape == (1, 7, 3)  # (H, W, C)
    np.testing.assert_array_equal(first[0, :, 0], LEVELS)
    np.testing.assert_array_equal(first[0, :, 1], LEVELS[::-1])
    np.testing.assert_array_equal(first[0, :, 2], [128] * 7)
    np.testing.assert_array_equal(second[0, :, 0], LEVELS[::-1])


def test_image_pil_holds_the_same_levels_as_np():
    images = postprocess_samples(image_batch(), tiny_config("image"), "pil")
    arrays = postprocess_samples(image_batch(), tiny_config("image"), "np")
    assert all(isinstance(image, PIL.Image.Image) for image in images)
    assert [(image.mode, image.size) for image in images] == [("RGB", (7, 1))] * 2
    for image, array in zip(images, arrays, strict=True):
        np.testing.assert_array_equal(np.asarray(image), array)


def test_image_pt_gives_channel_first_floats_in_unit_range():
    first, second = postprocess_samples(image_batch(), tiny_config("image"), "pt")
    assert first.shape == (3, 1, 7) and first.dtype == torch.float32
    torch.testing.assert_close(first[0, 0], torch.tensor(UNIT))
    torch.testing.assert_close(second[0, 0], torch.tensor(UNIT[::-1]))


# ---- postprocess_samples: video


def test_video_np_is_frames_height_width_channels():
    (video,) = postprocess_samples(video_batch(), tiny_config("video"), "np")
    assert video.dtype == np.uint8 and video.shape == (7, 2, 2, 3)
    np.testing.assert_array_equal(video[:, 0, 0, 0], LEVELS)
    np.testing.assert_array_equal(video[:, 1, 1, 1], LEVELS[::-1])
    np.testing.assert_array_equal(video[:, 0, 1, 2], [128] * 7)


def test_video_pil_is_a_list_of_frames():
    (frames,) = postprocess_samples(video_batch(), tiny_config("video"), "pil")
    (array,) = postprocess_samples(video_batch(), tiny_config("video"), "np")
    assert isinstance(frames, list) and len(frames) == 7
    assert all(isinstance(frame, PIL.Image.Image) and frame.size == (2, 2) for frame in frames)
    np.testing.assert_array_equal(np.stack([np.asarray(frame) for frame in frames]), array)


def test_video_pt_is_frames_channels_height_width():
    (video,) = postprocess_samples(video_batch(), tiny_config("video"), "pt")
    assert video.shape == (7, 3, 2, 2)
    torch.testing.assert_close(video[:, 0, 0, 0], torch.tensor(UNIT))
    torch.testing.assert_close(video[:, 1, 0, 0], torch.tensor(UNIT[::-1]))


# ---- postprocess_samples: audio


@pytest.mark.parametrize("output_type", ["pil", "np"])
def test_audio_is_clamped_waveform_with_the_configs_sampling_rate(output_type):
    waveform = torch.tensor(VALUES).reshape(1, 1, 7).repeat(2, 2, 1)  # (batch 2, channels 2, 7 samples)
    outputs = postprocess_samples(waveform, tiny_config("audio", sampling_rate=8000), output_type)
    assert len(outputs) == 2
    for output in outputs:
        assert set(output) == {"audio", "sampling_rate"}
        assert output["sampling_rate"] == 8000
        assert isinstance(output["audio"], np.ndarray)
        assert output["audio"].shape == (2, 7)  # (channels, samples)
        np.testing.assert_array_equal(output["audio"][1], np.clip(VALUES, -1, 1).astype(np.float32))


def test_audio_pt_is_a_tensor():
    waveform = torch.tensor(VALUES).reshape(1, 1, 7)
    (output,) = postprocess_samples(waveform, tiny_config("audio"), "pt")
    torch.testing.assert_close(output["audio"], torch.tensor(VALUES).clamp(-1, 1).reshape(1, 7))


def test_unknown_output_type_is_rejected():
    with pytest.raises(ValueError, match=r"output_type must be one of \('pil', 'np', 'pt'\), got 'jpeg'"):
        postprocess_samples(image_batch(), tiny_config("image"), "jpeg")


# ---- files


def test_image_grid_is_as_square_as_possible_and_pads_with_black(tmp_path):
    images = solid_frames(5, size=(16, 8))  # width 16, height 8
    path = save_image_grid(images, tmp_path / "grids" / "samples.png")
    assert path == tmp_path / "grids" / "samples.png"
    grid = np.asarray(PIL.Image.open(path))
    assert grid.shape == (2 * 8, 3 * 16, 3)  # 2 rows of 3
    np.testing.assert_array_equal(grid[8 + 4, 16 + 8], images[4].getpixel((0, 0)))  # row 1, column 1
    np.testing.assert_array_equal(grid[8 + 4, 32 + 8], [0, 0, 0])  # the empty sixth cell


def test_image_grid_with_given_rows(tmp_path):
    path = save_image_grid(solid_frames(5, size=(16, 8)), tmp_path / "row.png", rows=1)
    assert PIL.Image.open(path).size == (5 * 16, 8)


def test_audio_round_trips_through_16_bit_wav(tmp_path):
    audio = np.array([[0.0, 0.5, -0.5, 0.25, 1.0, -1.0, 1.5, -1.5]] * 2, dtype=np.float32)
    audio[1] *= -1
    paths = save_outputs(
        [{"audio": audio, "sampling_rate": 8000}] * 3,
        tiny_config("audio"),
        tmp_path / "audio",
        prefix="speech",
    )
    assert paths == [tmp_path / "audio" / f"speech_{index}.wav" for index in range(3)]
    info = soundfile.info(paths[0])
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (8000, 2, 8, "PCM_16")
    pcm, _ = soundfile.read(paths[0], dtype="int16")  # (samples, channels)
    # libsndfile scales by 32768 and saturates, so 1.0 (and the clipped 1.5) is stored as 32767.
    np.testing.assert_array_equal(pcm[:, 0], [0, 16384, -16384, 8192, 32767, -32768, 32767, -32768])
    np.testing.assert_array_equal(pcm[:, 1], [0, -16384, 16384, -8192, -32768, 32767, -32768, 32767])


def test_gif_has_every_frame_at_the_requested_rate(tmp_path):
    videos = [solid_frames(5), solid_frames(5)[::-1]]
    paths = save_outputs(videos, tiny_config("video", fps=10), tmp_path, prefix="clip")
    assert paths == [tmp_path / "clip_0.gif", tmp_path / "clip_1.gif"]
    with PIL.Image.open(paths[1]) as gif:
        assert (gif.n_frames, gif.size, gif.info["duration"]) == (5, (16, 16), 100)
        assert gif.convert("RGB").getpixel((0, 0)) == videos[1][0].getpixel((0, 0))


def test_an_8_fps_gif_plays_at_8_fps_and_reads_back_whole(tmp_path):
    # GIF durations are centiseconds: 125 ms frames alternate 120 and 130 ms.
    (path,) = save_outputs([solid_frames(16)], tiny_config("video", fps=8), tmp_path)
    durations = []
    with PIL.Image.open(path) as gif:
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
    assert sum(durations) == 16 * 125 and set(durations) == {120, 130}
    clip = VideoPreprocessor(num_frames=16, size=(16, 16), fps=8)({"bytes": path.read_bytes(), "path": None})
    assert clip.shape == (16, 3, 16, 16)


def test_mp4_decodes_with_pyav_to_every_frame(tmp_path):
    (path,) = save_outputs([solid_frames(6)], tiny_config("video", fps=8), tmp_path, video_format="mp4")
    assert path == tmp_path / "sample_0.mp4"
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == 8
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    assert len(frames) == 6 and frames[0].shape == (16, 16, 3)
    # H.264 in yuv420p is lossy; a solid colour still comes back within a few levels.
    np.testing.assert_allclose(frames[3][8, 8], solid_frames(6)[3].getpixel((8, 8)), atol=8)


def test_mp4_pads_odd_sizes_to_even(tmp_path):
    path = export_to_mp4(solid_frames(2, size=(15, 9)), tmp_path / "odd.mp4", fps=8)
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    assert [(frame.width, frame.height) for frame in frames] == [(16, 10)] * 2


def test_unknown_video_format_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"video_format must be one of \('gif', 'mp4'\), got 'avi'"):
        save_outputs([solid_frames(2)], tiny_config("video"), tmp_path, video_format="avi")


@pytest.mark.parametrize(
    ("modality", "shape", "names"),
    [
        ("image", (4, 3, 16, 16), ["sample_grid.png"]),
        ("audio", (2, 1, 256), ["sample_0.wav", "sample_1.wav"]),
        ("video", (2, 4, 3, 16, 16), ["sample_0.gif", "sample_1.gif"]),
    ],
)
def test_save_samples_writes_the_modalitys_files(tmp_path, modality, shape, names):
    samples = torch.rand(shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    paths = save_samples(samples, tiny_config(modality), tmp_path)
    assert paths == [tmp_path / name for name in names]
    assert all(path.stat().st_size > 0 for path in paths)


@pytest.mark.parametrize(
    ("modality", "shape", "names"),
    [
        ("image", (2, 3, 16, 16), ["reconstruction_grid.png"]),
        (
            "audio",
            (2, 1, 256),
            ["original_0.wav", "original_1.wav", "reconstruction_0.wav", "reconstruction_1.wav"],
        ),
        (
            "video",
            (2, 4, 3, 16, 16),
            ["original_vs_reconstruction_0.gif", "original_vs_reconstruction_1.gif"],
        ),
    ],
)
def test_save_reconstructions_names_each_original_and_its_reconstruction(tmp_path, modality, shape, names):
    generator = torch.Generator().manual_seed(0)
    inputs, reconstructions = (torch.rand(shape, generator=generator) * 2 - 1 for _ in range(2))
    paths = save_reconstructions(inputs, reconstructions, tiny_config(modality), tmp_path)
    assert paths == [tmp_path / name for name in names]
    if modality == "audio":  # the originals are the inputs, the reconstructions the model's outputs
        original, _ = soundfile.read(tmp_path / "original_1.wav", dtype="float32")
        reconstructed, _ = soundfile.read(tmp_path / "reconstruction_1.wav", dtype="float32")
        np.testing.assert_allclose(original, inputs[1, 0].numpy(), atol=1 / 2**14)
        np.testing.assert_allclose(reconstructed, reconstructions[1, 0].numpy(), atol=1 / 2**14)
    elif modality == "video":  # original left, reconstruction right
        with PIL.Image.open(paths[0]) as gif:
            first_frame = np.asarray(gif.convert("RGB"), dtype=float)
        assert first_frame.shape == (16, 32, 3)
        original, reconstructed = (
            postprocess_samples(x[:1], tiny_config(modality), "np")[0][0] for x in (inputs, reconstructions)
        )
        assert (
            np.abs(first_frame[:, :16] - original).mean() < np.abs(first_frame[:, :16] - reconstructed).mean()
        )
        assert (
            np.abs(first_frame[:, 16:] - reconstructed).mean() < np.abs(first_frame[:, 16:] - original).mean()
        )
