"""The reliability fixes: loading that names what is wrong with a folder, sampling and pipeline arguments refused
up front, training that stops at a non-finite loss and refuses a damaged checkpoint by name, resumed runs that
end with the very same weights as uninterrupted ones, transparency composited on white, truncated WAV files
refused, and a warning for inputs far outside [-1, 1].

Training runs call the example scripts' `main(argv)` in this process on tiny models; a resumed run starts from a
copy of the uninterrupted run's checkpoint (a deterministic run writes the same checkpoint whether or not it is
killed after it)."""

import io
import json
import logging
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import soundfile
import torch
import transformers
from conftest import EXAMPLES, load_script, tiny_config
from datasets import Dataset, Features
from datasets import Image as ImageFeature
from safetensors.torch import load_file, save_file
from test_cli import IMAGE_CONFIG, run_failing, save_model
from test_data import png_bytes
from test_guidance import tiny_prior as guidance_prior
from test_pipeline import tiny_prior, tiny_vqvae
from test_training_scripts import (
    QUIET,
    SMALL_SHAPES,
    TINY_PRIOR,
    TINY_VQVAE,
    read_history,
    script_command,
    script_env,
    tiny_vqvae_config,
)

from hf_vqvae import VQPriorModel, VQSamplePipeline, VQVAEModel
from hf_vqvae.cli import main as cli_main
from hf_vqvae.data import BadExampleError, build_preprocessor, decode_audio, decode_image, prepare_dataset
from hf_vqvae.data.seeding import ExampleSeededDataset
from hf_vqvae.models.prior import modeling_prior as modeling_prior_module
from hf_vqvae.models.prior.prior_inputs import check_sampling_memory
from hf_vqvae.training.checkpointing import DamagedCheckpointError, NonFiniteLossError

TRAIN_VQVAE, TRAIN_PRIOR = EXAMPLES / "train_vqvae.py", EXAMPLES / "train_prior.py"
WHITE, RED, BLUE = (255, 255, 255), (255, 0, 0), (0, 0, 255)


# ----------------------------------------------------------------------------------------- 1. from_pretrained


@pytest.fixture
def saved_pair(tmp_path) -> Path:
    """A tiny image VQ-VAE at the folder's root and a transformer prior over its codes in `prior/`."""
    return save_model(tmp_path / "model", IMAGE_CONFIG)


@pytest.mark.parametrize("model_class", [VQVAEModel, VQPriorModel])
def test_a_missing_folder_is_named(model_class, tmp_path):
    for missing in ("/no/such/dir", str(tmp_path / "no_such_run")):
        with pytest.raises(OSError, match=r"No such model folder") as error:
            model_class.from_pretrained(missing)
        assert missing in str(error.value)


def test_a_vqvae_folder_loaded_as_a_prior_says_where_the_prior_is(saved_pair):
    with pytest.raises(ValueError, match=r"holds a model of type 'hf_vqvae'") as error:
        VQPriorModel.from_pretrained(saved_pair)
    assert "VQPriorModel.from_pretrained(path, subfolder='prior')" in str(error.value)
    assert type(VQPriorModel.from_pretrained(saved_pair, subfolder="prior")) is VQPriorModel


def test_a_prior_folder_loaded_as_a_vqvae_says_to_load_it_as_a_prior(saved_pair):
    with pytest.raises(ValueError, match=r"holds a model of type 'hf_vqvae_prior'") as error:
        VQVAEModel.from_pretrained(saved_pair / "prior")
    assert "load it with VQPriorModel" in str(error.value)


def test_a_folder_of_another_model_type_is_named_by_its_type(tmp_path):
    config = transformers.GPT2Config(n_layer=1, n_head=1, n_embd=8, vocab_size=16, n_positions=8)
    transformers.GPT2Model(config).save_pretrained(tmp_path / "gpt2")
    for model_class in (VQVAEModel, VQPriorModel):
        with pytest.raises(ValueError, match=r"holds a model of type 'gpt2'") as error:
            model_class.from_pretrained(tmp_path / "gpt2")
        assert "shape" not in str(error.value)


@pytest.mark.parametrize("kept_bytes", [1000, 0])
def test_a_truncated_or_empty_weights_file_is_named(saved_pair, kept_bytes):
    weights = saved_pair / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:kept_bytes])
    with pytest.raises(OSError, match=r"damaged or truncated") as error:
        VQVAEModel.from_pretrained(saved_pair)
    assert str(saved_pair) in str(error.value)


def test_non_finite_weights_are_refused_naming_the_tensor(saved_pair):
    weights = saved_pair / "model.safetensors"
    tensors = load_file(weights)
    name = next(key for key in sorted(tensors) if key.endswith(".weight"))
    tensors[name].view(-1)[0] = float("nan")
    save_file(tensors, weights, metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"NaN or infinite values in 1 tensor\(s\)") as error:
        VQVAEModel.from_pretrained(saved_pair)
    assert name in str(error.value)


def test_lenient_loading_returns_the_loading_info(saved_pair):
    model, info = VQVAEModel.from_pretrained(
        saved_pair, ignore_mismatched_sizes=True, output_loading_info=True
    )
    assert isinstance(model, VQVAEModel) and not info["missing_keys"] and not info["mismatched_keys"]
    # A config edited to another codebook size: the lenient load reports the re-initialised tensors.
    config = json.loads((saved_pair / "config.json").read_text())
    (saved_pair / "config.json").write_text(json.dumps({**config, "codebook_size": 64}))
    model, info = VQVAEModel.from_pretrained(
        saved_pair, ignore_mismatched_sizes=True, output_loading_info=True
    )
    assert model.config.codebook_size == 64 and info["mismatched_keys"]


# ----------------------------------------------------------------------------------------- 2. prior.generate


def test_generate_refuses_a_seed_given_as_generator():
    prior = tiny_prior((4, 4))
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator .* got int 1234"):
        prior.generate(2, generator=1234)


def test_generate_refuses_a_request_that_cannot_fit_in_memory_at_once():
    prior = guidance_prior(num_classes=0)  # 32 wide: 10**8 grids need about 0.8 TB
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"Sampling 100000000 code grids at once needs at least") as error:
        prior.generate(10**8)
    assert time.perf_counter() - start < 2  # refused before anything of that size was allocated
    assert "draw fewer samples per call" in str(error.value) and "batch_size" in str(error.value)


def memory_for_rows(rows: int, config) -> int:
    """The fewest bytes with which `check_sampling_memory` lets `rows` grids be sampled at once."""
    low, high = 0, 2**40
    while low < high:
        middle = (low + high) // 2
        try:
            check_sampling_memory(rows, config, middle)
            high = middle
        except ValueError:
            low = middle + 1
    return low


@pytest.mark.parametrize(("condition_dropout", "passes"), [(0.1, 2), (0.0, 3)])
def test_guided_sampling_counts_its_passes_in_the_memory_estimate(monkeypatch, condition_dropout, passes):
    # A learned "no label" guides with 2 passes per sample; the mixture of 3 classes with 3.
    prior = guidance_prior(condition_dropout=condition_dropout)
    monkeypatch.setattr(
        modeling_prior_module, "available_memory", lambda device: memory_for_rows(2, prior.config)
    )
    assert prior.generate(2, class_labels=[0, 1], guidance_scale=1.0).shape == (2, 4, 4)
    with pytest.raises(ValueError, match=rf"Sampling {2 * passes} code grids at once"):
        prior.generate(2, class_labels=[0, 1], guidance_scale=3.0)
    if passes == 2:  # one guided sample is two rows: it fits where two unguided ones do
        assert prior.generate(1, class_labels=[0], guidance_scale=3.0).shape == (1, 4, 4)
    else:
        with pytest.raises(ValueError, match=r"Sampling 3 code grids at once"):
            prior.generate(1, class_labels=[0], guidance_scale=3.0)


# ------------------------------------------------------------------------------------------------ 3. pipe()


@pytest.fixture(scope="module")
def sample_pipe() -> VQSamplePipeline:
    vqvae = tiny_vqvae("image")
    pipe = VQSamplePipeline(vqvae, prior=tiny_prior(vqvae.config.code_shape))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_pipe_names_a_diffusion_argument_and_says_there_are_no_denoising_steps(sample_pipe):
    with pytest.raises(TypeError, match=r"unexpected argument\(s\) \['num_inference_steps'\]") as error:
        sample_pipe(num_inference_steps=10)
    message = str(error.value)
    for accepted in ("'num_samples'", "'batch_size'", "'guidance_scale'", "'seed'", "'temperature'"):
        assert accepted in message
    assert "sampling_batch_size" not in message  # internal: the caller says batch_size
    assert "no denoising steps" in message


def test_pipe_names_an_unknown_argument_and_those_it_takes(sample_pipe):
    with pytest.raises(
        TypeError, match=r"unexpected argument\(s\) \['foo'\]; it takes \[.*'num_samples'"
    ) as error:
        sample_pipe(num_samples=1, foo=1)
    assert "denoising" not in str(error.value)
    assert len(sample_pipe(num_samples=1, seed=0)) == 1  # the accepted arguments still work


# ------------------------------------------------------------------------ 4. non-finite loss, damaged checkpoints


def vqvae_argv(output_dir: Path, *extra: str) -> list[str]:
    return [
        *SMALL_SHAPES,
        *TINY_VQVAE,
        *QUIET,
        "--train_batch_size",
        "8",
        "--output_dir",
        str(output_dir),
        *extra,
    ]


def prior_argv(vqvae_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    return [
        *SMALL_SHAPES,
        *TINY_PRIOR,
        *QUIET,
        "--vqvae_name_or_path",
        str(vqvae_dir),
        "--codes_cache_dir",
        str(output_dir.with_name(f"{output_dir.name}_codes")),
        "--train_batch_size",
        "8",
        "--output_dir",
        str(output_dir),
        *extra,
    ]


DIVERGING = ["--max_train_steps", "6", "--checkpointing_steps", "1", "--learning_rate", "1e8"]


def assert_stopped_at_the_non_finite_step(error: NonFiniteLossError, output_dir: Path, prefix: str) -> None:
    message = str(error)
    assert "at step 2" in message  # step 1 (checkpointed) was finite; its 1e8 update made step 2's loss NaN
    assert f"the last checkpoint with finite weights is {output_dir / f'{prefix}-1'}" in message
    assert not (output_dir / f"{prefix}-2").exists()


def test_train_vqvae_stops_at_a_non_finite_loss_without_saving_final_weights(tmp_path):
    output_dir = tmp_path / "out"
    with pytest.raises(NonFiniteLossError) as error:
        load_script(TRAIN_VQVAE).main(vqvae_argv(output_dir, *DIVERGING))
    assert_stopped_at_the_non_finite_step(error.value, output_dir, "checkpoint")
    assert not (output_dir / "model.safetensors").exists() and not (output_dir / "README.md").exists()
    assert [record["step"] for record in read_history(output_dir / "training_history.jsonl")] == [1]


def test_train_prior_stops_at_a_non_finite_loss_without_saving_final_weights(tmp_path):
    vqvae_dir = tmp_path / "vqvae"
    VQVAEModel(tiny_vqvae_config()).save_pretrained(vqvae_dir)
    output_dir = tmp_path / "out"
    with pytest.raises(NonFiniteLossError) as error:
        load_script(TRAIN_PRIOR).main(prior_argv(vqvae_dir, output_dir, *DIVERGING))
    assert_stopped_at_the_non_finite_step(error.value, output_dir, "prior-checkpoint")
    assert not (output_dir / "prior").exists() and not (output_dir / "README.md").exists()


def test_a_diverging_run_exits_non_zero(tmp_path):
    output_dir = tmp_path / "out"
    command = script_command(TRAIN_VQVAE, vqvae_argv(output_dir, *DIVERGING))
    result = subprocess.run(command, env=script_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert re.search(r"NonFiniteLossError: The training loss became -?(nan|inf) at step 2\b", result.stderr)
    assert not (output_dir / "model.safetensors").exists()


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory) -> Path:
    """A 2-step VQ-VAE run with checkpoints after steps 1 and 2."""
    output_dir = tmp_path_factory.mktemp("two_checkpoints") / "out"
    argv = vqvae_argv(output_dir, "--max_train_steps", "2", "--checkpointing_steps", "1")
    load_script(TRAIN_VQVAE).main(argv)
    return output_dir


@pytest.mark.parametrize("damaged", ["optimizer.bin", "model.safetensors", "random_states_0.pkl"])
def test_resuming_from_a_damaged_checkpoint_names_the_file_and_the_previous_checkpoint(
    two_checkpoints, tmp_path, damaged
):
    output_dir = tmp_path / "out"
    for name in ("checkpoint-1", "checkpoint-2"):
        shutil.copytree(two_checkpoints / name, output_dir / name)
    file = output_dir / "checkpoint-2" / damaged
    file.write_bytes(file.read_bytes()[:1000])  # a copy cut short
    argv = vqvae_argv(output_dir, "--max_train_steps", "3", "--resume_from_checkpoint", "latest")
    with pytest.raises(DamagedCheckpointError) as error:
        load_script(TRAIN_VQVAE).main(argv)
    message = str(error.value)
    assert f"Cannot resume from {output_dir / 'checkpoint-2'}: {damaged} cannot be read" in message
    assert f"the previous complete checkpoint is {output_dir / 'checkpoint-1'}" in message
    assert not (output_dir / "training_history.jsonl").exists()  # no step was taken


def test_resuming_a_checkpoint_past_max_train_steps_is_refused(two_checkpoints, tmp_path):
    """Another, longer run's checkpoint in the folder: resuming it would end at once with that run's weights."""
    output_dir = tmp_path / "out"
    shutil.copytree(two_checkpoints / "checkpoint-2", output_dir / "checkpoint-2")
    argv = vqvae_argv(output_dir, "--max_train_steps", "1", "--resume_from_checkpoint", "latest")
    with pytest.raises(ValueError, match=r"checkpoint-2 is at step 2, past --max_train_steps 1"):
        load_script(TRAIN_VQVAE).main(argv)
    assert not (output_dir / "model.safetensors").exists()


# ------------------------------------------------------------------------------------------- 5. exact resume

# 256 shapes: 243 for training, 15 batches of 16 an epoch. A checkpoint at step 10 is mid-epoch; with the fast
# EMA (decay 0.5) and a high learning rate, dead codes are restarted after it (checked below), which parted a
# resumed run from the uninterrupted one when the resumed run drew its random numbers differently.
RESUME_DATA = [
    "--dataset_name",
    "builtin:shapes",
    "--builtin_num_examples",
    "256",
    "--train_batch_size",
    "16",
]
RESUME_VQVAE = [
    *RESUME_DATA,
    "--config_overrides",
    "hidden_channels=16,residual_channels=8,codebook_size=32,embedding_dim=8,ema_decay=0.5",
    *QUIET,
    "--learning_rate",
    "2e-3",
    "--max_train_steps",
    "24",
    "--checkpointing_steps",
    "10",
]


def run_and_resume(script: Path, argv_for, work: Path, checkpoint: str, history: str) -> tuple[Path, Path]:
    """Run `script` uninterrupted, then resume a copy of its mid-run `checkpoint` into a fresh folder under the
    same arguments; returns (uninterrupted, resumed) output folders."""
    reference, resumed = work / "reference", work / "resumed"
    load_script(script).main(argv_for(reference))
    shutil.copytree(reference / checkpoint, resumed / checkpoint)
    load_script(script).main([*argv_for(resumed), "--resume_from_checkpoint", "latest"])
    assert read_history(resumed / history)[0]["step"] == int(checkpoint.rsplit("-", 1)[1]) + 1
    return reference, resumed


@pytest.fixture(scope="module")
def vqvae_resumed(tmp_path_factory) -> tuple[Path, Path]:
    return run_and_resume(
        TRAIN_VQVAE,
        lambda output_dir: [*RESUME_VQVAE, "--output_dir", str(output_dir)],
        tmp_path_factory.mktemp("vqvae_exact_resume"),
        "checkpoint-10",
        "training_history.jsonl",
    )


def assert_same_weights_file(resumed: Path, reference: Path) -> None:
    """The two weights files are byte for byte the same (naming the tensors that differ when they are not)."""
    resumed_tensors, reference_tensors = load_file(resumed), load_file(reference)
    differing = [
        name for name in reference_tensors if not torch.equal(resumed_tensors[name], reference_tensors[name])
    ]
    assert not differing, (
        f"the resumed run ended with other values in {len(differing)} tensors: {differing[:4]}"
    )
    assert resumed.read_bytes() == reference.read_bytes()


def num_restarts(folder: Path) -> int:
    return int(load_file(folder / "model.safetensors")["quantizer.num_restarts"])


def test_a_vqvae_run_resumed_mid_epoch_ends_with_the_same_weights(vqvae_resumed):
    reference, resumed = vqvae_resumed
    history = read_history(reference / "training_history.jsonl")
    assert {record["epoch"] for record in history if "epoch" in record} == {0, 1}
    assert num_restarts(reference) > num_restarts(reference / "checkpoint-10") > 0  # restarts after it, too
    assert_same_weights_file(resumed / "model.safetensors", reference / "model.safetensors")
    resumed_history = read_history(resumed / "training_history.jsonl")
    assert resumed_history == [record for record in history if record["step"] > 10]


def test_a_prior_run_with_dropout_resumed_mid_epoch_ends_with_the_same_weights(vqvae_resumed, tmp_path):
    vqvae_dir, _ = vqvae_resumed
    codes = tmp_path / "codes"  # encoded by the first run, reused by the resumed one

    def argv_for(output_dir: Path) -> list[str]:
        return [
            *RESUME_DATA,
            *TINY_PRIOR,
            *QUIET,
            "--config_overrides",
            "dropout=0.1",  # drawn from torch's global RNG at every step
            "--vqvae_name_or_path",
            str(vqvae_dir),
            "--codes_cache_dir",
            str(codes),
            "--learning_rate",
            "3e-3",
            "--max_train_steps",
            "20",
            "--checkpointing_steps",
            "10",
            "--output_dir",
            str(output_dir),
        ]

    reference, resumed = run_and_resume(
        TRAIN_PRIOR, argv_for, tmp_path, "prior-checkpoint-10", "prior_training_history.jsonl"
    )
    history = read_history(reference / "prior_training_history.jsonl")
    assert {record["epoch"] for record in history if "epoch" in record} == {0, 1}
    assert_same_weights_file(
        resumed / "prior" / "model.safetensors", reference / "prior" / "model.safetensors"
    )


def shifted_gradients(num_images: int = 6) -> Dataset:
    """16x64 grey images whose pixel value grows by 3 a column (from `index`): a 16x16 crop's first pixel tells its
    offset."""
    images = [
        np.broadcast_to(np.arange(64) * 3 + index, (16, 64)).astype(np.uint8) for index in range(num_images)
    ]
    data = {"image": [{"bytes": png_bytes(image), "path": None} for image in images]}
    return Dataset.from_dict(data, features=Features({"image": ImageFeature()}))


def seeded_crops(seed: int) -> ExampleSeededDataset:
    generator = torch.Generator()
    preprocessor = build_preprocessor(tiny_config("image"), train=True, generator=generator)
    return ExampleSeededDataset(prepare_dataset(shifted_gradients(), preprocessor, "image"), generator, seed)


def test_example_seeded_crops_depend_on_seed_epoch_and_index_only():
    def crops(dataset: ExampleSeededDataset, order) -> dict[int, torch.Tensor]:
        return {index: dataset[index]["pixel_values"] for index in order}

    forward = crops(seeded_crops(seed=3), range(6))
    offsets = {(round((float(crop[0, 0, 0]) + 1) * 127.5) - index) // 3 for index, crop in forward.items()}
    assert len(offsets) > 1  # random crops, at several offsets
    dataset = seeded_crops(seed=3)
    torch.manual_seed(123)  # nothing comes from the global RNG
    for order in ([5, 4, 3, 2, 1, 0], [2, 2, 0, 5, 1, 3, 4, 0]):
        for index, crop in crops(dataset, order).items():
            torch.testing.assert_close(crop, forward[index], rtol=0, atol=0)
    dataset.set_epoch(1)
    next_epoch = crops(dataset, range(6))
    assert any(not torch.equal(next_epoch[index], forward[index]) for index in range(6))
    dataset.set_epoch(0)
    assert all(torch.equal(dataset[index]["pixel_values"], forward[index]) for index in range(6))
    other_seed = crops(seeded_crops(seed=4), range(6))
    assert any(not torch.equal(other_seed[index], forward[index]) for index in range(6))


# ------------------------------------------------------------------------------------------ 6. transparency


def luminance(colour) -> int:
    return PIL.Image.new("RGB", (1, 1), colour).convert("L").getpixel((0, 0))


def transparent_red_opaque_blue(mode: str) -> bytes:
    """A 2x1 PNG of `mode`: a fully transparent red pixel, then an opaque blue one (LA: grey levels)."""
    if mode == "RGBA":
        image = PIL.Image.new("RGBA", (2, 1))
        image.putdata([(*RED, 0), (*BLUE, 255)])
        info = {}
    elif mode == "LA":
        image = PIL.Image.new("LA", (2, 1))
        image.putdata([(luminance(RED), 0), (luminance(BLUE), 255)])
        info = {}
    else:  # a palette image whose index 0 is transparent
        image = PIL.Image.new("P", (2, 1))
        image.putpalette([*RED, *BLUE] + [0] * (3 * 254))
        image.putdata([0, 1])
        info = {"transparency": 0}
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **info)
    return buffer.getvalue()


@pytest.mark.parametrize("source_mode", ["RGBA", "LA", "P"])
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_transparent_pixels_are_composited_on_white(source_mode, mode):
    encoded = transparent_red_opaque_blue(source_mode)
    assert PIL.Image.open(io.BytesIO(encoded)).mode == source_mode
    decoded = decode_image(encoded, mode)
    assert decoded.mode == mode
    transparent, opaque = decoded.getpixel((0, 0)), decoded.getpixel((1, 0))
    if mode == "RGB":
        assert transparent == WHITE
        assert opaque == (BLUE if source_mode != "LA" else (luminance(BLUE),) * 3)
    else:
        assert (transparent, opaque) == (255, luminance(BLUE))
    # A mode with alpha keeps it.
    if source_mode == "RGBA":
        assert decode_image(encoded, "RGBA").getpixel((0, 0)) == (*RED, 0)


def test_encode_reads_an_rgba_png_as_composited_on_white(saved_pair, tmp_path):
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    alpha = np.full((16, 16, 1), 255, np.uint8)
    alpha[:8] = 0  # the top half is transparent
    composited = colours.copy()
    composited[:8] = 255
    files = {
        "rgba": np.concatenate([colours, alpha], axis=-1),
        "composited": composited,
        "hidden_colours": colours,
    }
    codes = {}
    for name, array in files.items():
        (tmp_path / f"{name}.png").write_bytes(png_bytes(array))
        output = tmp_path / f"{name}.npy"
        argv = ["encode", str(saved_pair), str(tmp_path / f"{name}.png"), "--output", str(output)]
        assert cli_main(argv) == 0
        codes[name] = np.load(output)
    np.testing.assert_array_equal(codes["rgba"], codes["composited"])
    assert not np.array_equal(codes["rgba"], codes["hidden_colours"])  # the test can tell the two apart


# ----------------------------------------------------------------------------------------------- 7. WAV files


def wav_file_bytes(num_samples: int = 2000, sampling_rate: int = 16000) -> bytes:
    waveform = 0.5 * np.sin(np.arange(num_samples) / 5).astype(np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, sampling_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def test_a_truncated_wav_is_refused():
    complete = wav_file_bytes()
    assert len(complete) > 1000
    with pytest.raises(
        BadExampleError, match=r"WAV file is truncated: its header declares \d+ bytes but only 1000"
    ):
        decode_audio(complete[:1000])


@pytest.mark.parametrize("declared", [0, 0xFFFFFFFF])
def test_a_wav_of_unknown_length_from_a_streaming_writer_still_decodes(declared, tmp_path):
    complete = wav_file_bytes()
    streamed = complete[:4] + declared.to_bytes(4, "little") + complete[8:]
    expected, sampling_rate = decode_audio(complete)
    path = tmp_path / "streamed.wav"
    path.write_bytes(streamed)
    for source in (streamed, str(path)):
        waveform, rate = decode_audio(source)
        assert rate == sampling_rate
        np.testing.assert_array_equal(waveform, expected)


def test_encode_names_a_truncated_wav_in_one_line(tmp_path, capsys):
    config = tiny_config("audio")  # 256-sample windows at 16 kHz: the cut file still has 478 samples
    model = save_model(tmp_path / "audio_model", config)
    path = tmp_path / "cut.wav"
    path.write_bytes(wav_file_bytes(sampling_rate=config.sampling_rate)[:1000])
    message = run_failing(["encode", str(model), str(path), "--output", str(tmp_path / "c.npy")], capsys)
    assert "truncated" in message and str(path) in message
    assert len(message.strip().splitlines()) == 1 and "Traceback" not in message
    assert not (tmp_path / "c.npy").exists()


# -------------------------------------------------------------------------------------- 8. input range warning


def test_inputs_far_outside_minus_one_one_warn_once(caplog):
    transformers.utils.logging.warning_once.cache_clear()  # a warning shown earlier in this process
    model = VQVAEModel(tiny_config("image")).eval()
    with caplog.at_level(logging.WARNING, logger="hf_vqvae.models.vqvae.modeling_vqvae"), torch.no_grad():
        model(torch.rand(2, 3, 8, 8) * 2 - 1)
        model(torch.full((1, 3, 8, 8), -1.0))
        assert not caplog.records
        model(torch.rand(2, 3, 8, 8) * 255)
        model(torch.rand(2, 3, 8, 8) * 255)
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "far outside the [-1, 1]" in record.getMessage() and "x / 127.5 - 1" in record.getMessage()
