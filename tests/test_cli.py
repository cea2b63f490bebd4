"""Tests of the `hf-vqvae` command, through `main([...])`, on tiny models saved in tmp_path."""

import json
import shutil
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import soundfile
import torch
from conftest import tiny_config
from datasets import Dataset
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import pipeline

from hf_vqvae import VQPriorConfig, VQPriorModel, VQVAEConfig, VQVAEModel
from hf_vqvae.cli import CommandError, main
from hf_vqvae.cli.evaluate_command import data_source
from hf_vqvae.cli.sample_command import sampling_labels
from hf_vqvae.data import build_preprocessor, load_builtin_dataset, make_shapes, split_train_validation
from hf_vqvae.pipelines.outputs import postprocess_samples
from hf_vqvae.training import demo

CLASS_NAMES = ["circle", "square", "triangle", "star"]
# 16x16 images -> 4x4 grids of 32 codes.
IMAGE_CONFIG = VQVAEConfig(
    hidden_channels=16, residual_channels=8, codebook_size=32, embedding_dim=8, sample_size=[16, 16]
)


def save_model(folder: Path, config: VQVAEConfig, num_classes: int = 0) -> Path:
    """A VQ-VAE at `folder` and a tiny transformer prior over its codes in `folder/prior`."""
    VQVAEModel(config).save_pretrained(folder)
    prior_config = VQPriorConfig(
        codebook_size=config.codebook_size,
        code_shape=config.code_shape,
        hidden_size=32,
        num_layers=2,
        num_heads=2,
        num_classes=num_classes,
    )
    if num_classes:
        prior_config.id2label = dict(enumerate(CLASS_NAMES[:num_classes]))
        prior_config.label2id = {name: index for index, name in prior_config.id2label.items()}
    VQPriorModel(prior_config).save_pretrained(folder / "prior")
    return folder


@pytest.fixture
def model_dir(tmp_path) -> Path:
    return save_model(tmp_path / "model", IMAGE_CONFIG)


def write_inputs(folder: Path, modality: str) -> list[str]:
    """Two random files of `modality`, larger than the tiny models' sample size (preprocessing cuts them)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for index in range(2):
        if modality == "image":
            path = folder / f"input_{index}.png"
            PIL.Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(path)
        elif modality == "audio":
            path = folder / f"input_{index}.wav"
            soundfile.write(path, rng.uniform(-0.5, 0.5, 300), 8000, subtype="PCM_16")
        else:
            path = folder / f"input_{index}.gif"
            frames = [
                PIL.Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)) for _ in range(6)
            ]
            frames[0].save(path, save_all=True, append_images=frames[1:], duration=125, loop=0)
        paths.append(str(path))
    return paths


def run_failing(argv: list[str], capsys) -> str:
    """Run `main(argv)`, check it exits with status 2, and return its error message."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    for command in ("demo", "sample", "encode", "decode", "evaluate"):
        assert command in help_text


def test_sample_writes_a_reproducible_image_grid(model_dir, tmp_path, capsys):
    for name in ("first", "second"):
        assert (
            main(
                [
                    "sample",
                    str(model_dir),
                    "--num_samples",
                    "3",
                    "--seed",
                    "7",
                    "--top_k",
                    "5",
                    "--output_dir",
                    str(tmp_path / name),
                ]
            )
            == 0
        )
    first, second = (
        np.asarray(PIL.Image.open(tmp_path / name / "samples_grid.png")) for name in ("first", "second")
    )
    assert first.shape == (16, 3 * 16, 3)  # one row of three 16x16 samples
    np.testing.assert_array_equal(first, second)
    assert "samples_grid.png" in capsys.readouterr().out


@pytest.mark.parametrize("modality, suffix", [("audio", ".wav"), ("video", ".gif")])
def test_sample_writes_one_file_per_sample(tmp_path, modality, suffix):
    model = save_model(tmp_path / "model", tiny_config(modality), num_classes=2)
    assert (
        main(
            [
                "sample",
                str(model),
                "--num_samples",
                "2",
                "--class_labels",
                "square",
                "--output_dir",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [
        f"sample_0{suffix}",
        f"sample_1{suffix}",
    ]


def test_sampling_labels_turn_command_line_words_into_pipeline_labels():
    assert sampling_labels(None) is None
    assert sampling_labels(["3"]) == 3
    assert sampling_labels(["star", "1"]) == ["star", 1]


def test_sample_draws_one_sample_per_label_given(tmp_path):
    model = save_model(tmp_path / "model", tiny_config("audio"), num_classes=2)
    assert (
        main(
            [
                "sample",
                str(model),
                "--class_labels",
                "square",
                "1",
                "0",
                "--output_dir",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [f"sample_{i}.wav" for i in range(3)]


def test_sample_reports_an_unknown_class_name(tmp_path, capsys):
    model = save_model(tmp_path / "model", tiny_config("image"), num_classes=2)
    message = run_failing(
        ["sample", str(model), "--class_labels", "hexagon", "--output_dir", str(tmp_path)], capsys
    )
    assert "hexagon" in message and "circle" in message


@pytest.mark.parametrize("codes_format", [".safetensors", ".npy"])
@pytest.mark.parametrize("modality", ["image", "audio", "video"])
def test_encode_decode_round_trip(tmp_path, modality, codes_format):
    config = IMAGE_CONFIG if modality == "image" else tiny_config(modality)
    model_dir = save_model(tmp_path / "model", config)
    inputs = write_inputs(tmp_path / "inputs", modality)
    codes_path = tmp_path / f"codes{codes_format}"

    assert main(["encode", str(model_dir), *inputs, "--output", str(codes_path), "--batch_size", "1"]) == 0
    model = VQVAEModel.from_pretrained(model_dir).eval()
    preprocessor = build_preprocessor(model.config, train=False)
    with torch.no_grad():
        expected_codes = model.encode(torch.stack([preprocessor(path) for path in inputs])).codes
        expected_outputs = postprocess_samples(model.decode(expected_codes), model.config, "np")
    codes = (
        load_file(codes_path)["codes"]
        if codes_format == ".safetensors"
        else torch.from_numpy(np.load(codes_path))
    )
    assert codes.dtype == torch.int64 and codes.shape == (2, *model.config.code_shape)
    torch.testing.assert_close(codes, expected_codes)

    assert main(["decode", str(model_dir), str(codes_path), "--output_dir", str(tmp_path / "decoded")]) == 0
    suffix = {"image": ".png", "audio": ".wav", "video": ".gif"}[modality]
    decoded = [tmp_path / "decoded" / f"input_{index}{suffix}" for index in range(2)]
    for path, expected in zip(decoded, expected_outputs, strict=True):
        if modality == "image":
            np.testing.assert_array_equal(np.asarray(PIL.Image.open(path)), expected)
        elif modality == "audio":
            waveform, sampling_rate = soundfile.read(path, dtype="float32", always_2d=True)
            assert sampling_rate == model.config.sampling_rate
            np.testing.assert_allclose(waveform.T, np.clip(expected["audio"], -1, 1), atol=1 / 2**15)
        else:  # GIF frames are palette-quantised: check the clip's shape and that it is close
            frames = np.stack([np.asarray(frame.convert("RGB")) for frame in _gif_frames(path)])
            assert frames.shape == expected.shape
            assert np.abs(frames.astype(int) - expected.astype(int)).mean() < 8


def _gif_frames(path: Path) -> list[PIL.Image.Image]:
    with PIL.Image.open(path) as gif:
        frames = []
        for index in range(gif.n_frames):
            gif.seek(index)
            frames.append(gif.copy())
    return frames


def test_encode_records_the_input_file_names(model_dir, tmp_path):
    inputs = write_inputs(tmp_path / "inputs", "image")
    main(["encode", str(model_dir), *inputs, "--output", str(tmp_path / "codes.safetensors")])
    with safe_open(tmp_path / "codes.safetensors", framework="pt") as codes_file:
        assert json.loads(codes_file.metadata()["file_names"]) == inputs
    main(["encode", str(model_dir), *inputs, "--output", str(tmp_path / "codes.npy")])
    assert json.loads((tmp_path / "codes.npy.json").read_text())["file_names"] == inputs


def test_decode_names_outputs_by_index_without_recorded_names(model_dir, tmp_path):
    save_file({"codes": torch.randint(0, 32, (3, 4, 4))}, tmp_path / "codes.safetensors")
    main(
        ["decode", str(model_dir), str(tmp_path / "codes.safetensors"), "--output_dir", str(tmp_path / "out")]
    )
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [
        f"decoded_{i}.png" for i in range(3)
    ]


@pytest.mark.parametrize(
    "codes, expected_message",
    [
        (torch.zeros(2, 16, dtype=torch.long), "shape"),  # a 1-D grid for an image model
        (torch.full((1, 4, 4), 32, dtype=torch.long), "[0, 32)"),  # beyond the codebook
        (torch.zeros(1, 4, 4), "integers"),
    ],
)
def test_decode_rejects_bad_codes(model_dir, tmp_path, capsys, codes, expected_message):
    save_file({"codes": codes}, tmp_path / "codes.safetensors")
    message = run_failing(["decode", str(model_dir), str(tmp_path / "codes.safetensors")], capsys)
    assert expected_message in message and "Traceback" not in message


def test_decode_warns_about_codes_of_another_model(model_dir, tmp_path, capsys):
    inputs = write_inputs(tmp_path / "inputs", "image")
    codes = tmp_path / "codes.npy"
    main(["encode", str(model_dir), *inputs, "--output", str(codes)])
    shutil.copytree(model_dir, tmp_path / "copy")
    capsys.readouterr()
    main(["decode", str(tmp_path / "copy"), str(codes), "--output_dir", str(tmp_path / "out")])
    assert f"was encoded with {str(model_dir)!r}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--device", "nodevice"], "'nodevice' is not a device this torch can use"),
        (["--batch_size", "0"], "--batch_size: must be an integer >= 1, got 0"),
    ],
)
def test_bad_device_and_batch_size_are_refused_by_the_parser(model_dir, tmp_path, capsys, flags, message):
    codes = tmp_path / "codes.npy"
    np.save(codes, np.zeros((1, 4, 4), dtype=np.int64))
    assert message in run_failing(["decode", str(model_dir), str(codes), *flags], capsys)


def test_decode_rejects_a_file_without_codes(model_dir, tmp_path, capsys):
    save_file({"weights": torch.zeros(2)}, tmp_path / "other.safetensors")
    assert "holds no 'codes'" in run_failing(
        ["decode", str(model_dir), str(tmp_path / "other.safetensors")], capsys
    )


@pytest.mark.parametrize("command", ["sample", "encode", "decode", "evaluate"])
def test_missing_model_folder_is_reported(tmp_path, capsys, command):
    missing = str(tmp_path / "no_such_model")
    extra = {
        "sample": [],
        "encode": ["a.png", "--output", "c.npy"],
        "decode": ["c.npy"],
        "evaluate": ["--data", "builtin:shapes"],
    }[command]
    message = run_failing([command, missing, *extra], capsys)
    assert "no such model folder" in message and "no_such_model" in message


def test_a_prior_folder_is_not_a_vqvae(model_dir, tmp_path, capsys):
    inputs = write_inputs(tmp_path / "inputs", "image")
    message = run_failing(
        ["encode", str(model_dir / "prior"), *inputs, "--output", str(tmp_path / "c.npy")], capsys
    )
    assert "not a VQ-VAE" in message


def test_encode_rejects_files_of_another_type(model_dir, tmp_path, capsys):
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not an image")
    message = run_failing(
        ["encode", str(model_dir), str(text_file), "--output", str(tmp_path / "c.npy")], capsys
    )
    assert "notes.txt" in message and ".png" in message


def test_encode_rejects_an_unreadable_file(model_dir, tmp_path, capsys):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not really a PNG")
    message = run_failing(
        ["encode", str(model_dir), str(broken), "--output", str(tmp_path / "c.npy")], capsys
    )
    assert "cannot read" in message and "broken.png" in message


def test_evaluate_prints_and_writes_the_validation_split_metrics(model_dir, tmp_path, capsys):
    output_json = tmp_path / "metrics.json"
    assert (
        main(
            [
                "evaluate",
                str(model_dir),
                "--data",
                "builtin:shapes",
                "--builtin_num_examples",
                "20",
                "--split_percentage",
                "25",
                "--output_json",
                str(output_json),
            ]
        )
        == 0
    )
    assert "psnr" in capsys.readouterr().out
    results = json.loads(output_json.read_text())
    assert results["num_eval_examples"] == 5

    _, validation = split_train_validation(load_builtin_dataset("builtin:shapes", num_examples=20), 25)
    model = VQVAEModel.from_pretrained(model_dir).eval()
    preprocessor = build_preprocessor(model.config, train=False)
    inputs = torch.stack([preprocessor(image) for image in validation["image"]])
    with torch.no_grad():
        mse = ((model(inputs).reconstruction.clamp(-1, 1) - inputs) ** 2).mean().item()
    assert results["mse"] == pytest.approx(mse, rel=1e-5)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--split_percentage", "100"], "--split_percentage: must be a percentage in [0, 100), got 100"),
        (["--max_samples", "0"], "--max_samples: must be an integer >= 1, got 0"),
    ],
)
def test_evaluate_flags_out_of_range_are_refused_by_the_parser(model_dir, capsys, flags, message):
    assert message in run_failing(["evaluate", str(model_dir), "--data", "builtin:shapes", *flags], capsys)


def test_evaluate_reads_parquet_files(model_dir, tmp_path, capsys):
    make_shapes(num_examples=6).to_parquet(tmp_path / "shapes.parquet")
    assert (
        main(
            [
                "evaluate",
                str(model_dir),
                "--data",
                str(tmp_path / "*.parquet"),
                "--max_samples",
                "4",
                "--output_json",
                str(tmp_path / "metrics.json"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "metrics.json").read_text())["num_eval_examples"] == 4


def test_data_source_tells_names_folders_and_files_apart(tmp_path):
    Dataset.from_dict({"x": [1]}).to_parquet(tmp_path / "a.parquet")
    assert data_source(["builtin:tones"]) == {"dataset_name": "builtin:tones"}
    assert data_source(["uoft-cs/cifar10"]) == {"dataset_name": "uoft-cs/cifar10"}
    assert data_source([str(tmp_path)]) == {"train_data_dir": str(tmp_path)}
    assert data_source([str(tmp_path / "*.parquet")]) == {"data_files": [str(tmp_path / "*.parquet")]}
    with pytest.raises(CommandError, match="no file matches"):
        data_source([str(tmp_path / "missing.parquet")])
    with pytest.raises(CommandError, match="no such folder"):
        data_source(["./no_such_folder"])


def test_the_demo_names_missing_training_extras(tmp_path, monkeypatch, capsys):
    def without_accelerate(name):
        raise ImportError("No module named 'accelerate'")

    monkeypatch.setattr(demo.importlib, "import_module", without_accelerate)
    message = run_failing(["demo", "--quick", "--output_dir", str(tmp_path / "out")], capsys)
    assert "training extras (No module named 'accelerate')" in message and "hf_vqvae[train]" in message


@pytest.mark.slow
def test_demo_quick_trains_a_pipeline_folder_per_modality(tmp_path, capsys):
    assert main(["demo", "--quick", "--output_dir", str(tmp_path)]) == 0
    summary_table = capsys.readouterr().out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert sorted(summary) == ["audio", "image", "video"]
    sample_suffix = {"image": ".png", "audio": ".wav", "video": ".gif"}
    for modality, result in summary.items():
        folder = tmp_path / modality
        assert modality in summary_table and str(folder) in summary_table
        for name in (
            "config.json",
            "model.safetensors",
            "README.md",
            "prior/config.json",
            "prior/model.safetensors",
        ):
            assert (folder / name).is_file(), name
        samples = [path.name for path in (folder / "samples").iterdir()]
        assert any("reconstruction" in name and name.endswith(sample_suffix[modality]) for name in samples)
        assert any(
            name.startswith("prior_sample") and name.endswith(sample_suffix[modality]) for name in samples
        )
        assert {"mse", "codebook_perplexity", "prior_bits_per_code"} <= set(result["metrics"])
        pipe = pipeline("vq-sample", model=str(folder))
        pipe.set_progress_bar_config(disable=True)
        assert len(pipe(num_samples=1, class_labels=0, seed=0)) == 1
