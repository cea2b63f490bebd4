"""Saved folders load with transformers alone: `save_pretrained` writes the model's code beside the weights and an
`auto_map` into config.json, and `AutoModel.from_pretrained(folder, trust_remote_code=True)` in a process where
`hf_vqvae` cannot be imported gives the same outputs as the package."""

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import PIL.Image
import pytest
import torch
from conftest import tiny_config, tiny_inputs
from test_pipeline import quiet
from transformers import pipeline

from hf_vqvae import VQPriorConfig, VQPriorModel, VQSamplePipeline, VQVAEModel
from hf_vqvae.models.remote_code import add_remote_code, code_files
from hf_vqvae.models.vqvae.processors import processor_for
from hf_vqvae.pipelines.remote_pipeline import REMOTE_TASK

# Runs in a fresh interpreter: the package is made unimportable before transformers loads the folders.
REMOTE_SCRIPT = """
import sys
sys.modules["hf_vqvae"] = None
import torch
from transformers import AutoConfig, AutoFeatureExtractor, AutoImageProcessor, AutoModel

folder, prior_folder, inputs_file, outputs_file = sys.argv[1:5]
config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
vqvae = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
prior = AutoModel.from_pretrained(prior_folder, trust_remote_code=True).eval()
processor_class = {"image": AutoImageProcessor, "audio": AutoFeatureExtractor}[config.modality]
processor = processor_class.from_pretrained(folder, trust_remote_code=True)
assert type(processor).__module__.startswith("transformers_modules"), type(processor).__module__
assert type(vqvae).__module__.startswith("transformers_modules"), type(vqvae).__module__
assert type(config).__name__ == "VQVAEConfig" and type(prior).__name__ == "VQPriorModel"
inputs, raw = torch.load(inputs_file, weights_only=False)
with torch.no_grad():
    encoded = vqvae.encode(inputs)
    outputs = {
        "reconstruction": vqvae(inputs).reconstruction,
        "processed": processor(raw)[vqvae.main_input_name] if raw is not None else None,
        "codes": encoded.codes,
        "logits": prior(encoded.codes, class_labels=torch.tensor([0, 1])).logits,
        "samples": prior.generate(2, class_labels=[0, 1], guidance_scale=2.0,
                                  generator=torch.Generator().manual_seed(0)),
    }
torch.save(outputs, outputs_file)
vqvae.save_pretrained(folder + "-resaved")  # the remote classes write their own code again
"""


# The pipeline folder's own pipeline, as transformers loads a custom pipeline (the task read from config.json).
REMOTE_PIPELINE_SCRIPT = """
import sys
sys.modules["hf_vqvae"] = None
import PIL.Image
import torch
from transformers import pipeline

folder, prompt_file, outputs_file = sys.argv[1:4]
pipe = pipeline(model=folder, trust_remote_code=True)
assert type(pipe).__module__.startswith("transformers_modules"), type(pipe).__module__
assert type(pipe.prior).__module__.startswith("transformers_modules"), type(pipe.prior).__module__
outputs = {
    "samples": pipe([0, 1], guidance_scale=2.0, seed=0, output_type="pt"),
    "prompted": pipe(prompt=PIL.Image.open(prompt_file), class_labels=1, num_samples=2, seed=0, output_type="pt"),
}
try:
    pipe(prompt=prompt_file)
except ValueError as error:
    outputs["file_prompt_error"] = str(error)
torch.save(outputs, outputs_file)
pipe.save_pretrained(folder + "-resaved")
"""


def run_without_package(*args, env_extra=None, script=REMOTE_SCRIPT) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def saved_models(tmp_path, modality="image", prior_type="transformer"):
    vqvae = VQVAEModel(tiny_config(modality)).eval()
    config = VQPriorConfig(
        prior_type=prior_type,
        codebook_size=16,
        code_shape=vqvae.config.code_shape,
        num_classes=2,
        condition_dropout=0.1,
        hidden_size=16,
        num_layers=2,
        num_heads=2,
    )
    prior = VQPriorModel(config).eval()
    vqvae.save_pretrained(tmp_path / "model")
    prior.save_pretrained(tmp_path / "model" / "prior")
    return vqvae, prior


@pytest.mark.parametrize(("modality", "prior_type"), [("image", "pixelcnn"), ("audio", "transformer")])
def test_folders_load_and_run_where_the_package_is_not_installed(tmp_path, modality, prior_type):
    vqvae, prior = saved_models(tmp_path, modality, prior_type)
    inputs = tiny_inputs(modality)[:2]
    rng = np.random.default_rng(0)
    raw = (
        rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
        if modality == "image"
        else rng.uniform(-0.5, 0.5, 300)
    )
    torch.save((inputs, raw), tmp_path / "inputs.pt")
    result = run_without_package(
        tmp_path / "model", tmp_path / "model" / "prior", tmp_path / "inputs.pt", tmp_path / "outputs.pt",
        env_extra={"HF_MODULES_CACHE": str(tmp_path / "modules")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    remote = torch.load(tmp_path / "outputs.pt")
    with torch.no_grad():
        encoded = vqvae.encode(inputs)
        torch.testing.assert_close(remote["reconstruction"], vqvae(inputs).reconstruction, rtol=0, atol=1e-6)
        assert torch.equal(remote["codes"], encoded.codes)
        assert torch.equal(remote["processed"], processor_for(vqvae.config)(raw)[vqvae.main_input_name])
        logits = prior(encoded.codes, class_labels=torch.tensor([0, 1])).logits
        torch.testing.assert_close(remote["logits"], logits, rtol=0, atol=1e-6)
    samples = prior.generate(
        2, class_labels=[0, 1], guidance_scale=2.0, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(remote["samples"], samples)
    resaved = tmp_path / "model-resaved"
    assert {p.name for p in resaved.glob("*.py")} == set(code_files(VQVAEModel.__module__))
    assert (resaved / "modeling_vqvae.py").read_text() == (
        tmp_path / "model" / "modeling_vqvae.py"
    ).read_text()


def test_saved_code_is_flat_and_the_config_points_at_it(tmp_path):
    saved_models(tmp_path)
    for folder, expected in [
        (tmp_path / "model", {"AutoConfig": "configuration_vqvae.VQVAEConfig", "AutoModel": "modeling_vqvae.VQVAEModel",
                              "AutoImageProcessor": "image_processing_vqvae.VQVAEImageProcessor"}),
        (tmp_path / "model" / "prior", {"AutoConfig": "configuration_prior.VQPriorConfig", "AutoModel": "modeling_prior.VQPriorModel"}),
    ]:  # fmt: skip
        config = json.loads((folder / "config.json").read_text())
        assert config["auto_map"] == expected and config["hf_vqvae_version"]
        for path in folder.glob("*.py"):
            source = path.read_text()
            assert source.startswith(f"# hf_vqvae {config['hf_vqvae_version']}: model code"), path.name
            assert not re.search(r"^\s*from \.\.|^\s*(from|import) hf_vqvae", source, re.MULTILINE), path.name


def test_a_folder_mixing_code_and_config_of_two_versions_names_the_file(tmp_path):
    saved_models(tmp_path)
    config_file = tmp_path / "model" / "config.json"
    config_file.write_text(
        config_file.read_text().replace('"hf_vqvae_version": "', '"hf_vqvae_version": "0.0.0-')
    )
    result = run_without_package(
        tmp_path / "model", tmp_path / "model" / "prior", tmp_path / "none.pt", tmp_path / "out.pt",
        env_extra={"HF_MODULES_CACHE": str(tmp_path / "modules")},
    )  # fmt: skip
    assert result.returncode != 0
    assert "configuration_vqvae.py in this folder is hf_vqvae" in result.stderr
    assert "config.json was written by hf_vqvae 0.0.0-" in result.stderr


def test_a_missing_code_file_is_named(tmp_path):
    saved_models(tmp_path)
    (tmp_path / "model" / "quantization.py").unlink()
    result = run_without_package(
        tmp_path / "model", tmp_path / "model" / "prior", tmp_path / "none.pt", tmp_path / "out.pt",
        env_extra={"HF_MODULES_CACHE": str(tmp_path / "modules")},
    )  # fmt: skip
    assert result.returncode != 0 and "quantization.py" in result.stderr.splitlines()[-1]


def test_add_remote_code_leaves_the_weights_untouched(tmp_path):
    vqvae = VQVAEModel(tiny_config("image"))
    vqvae.save_pretrained(tmp_path)
    for path in tmp_path.glob("*.py"):
        path.unlink()
    config = json.loads((tmp_path / "config.json").read_text())
    del config["auto_map"], config["hf_vqvae_version"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    weights = (tmp_path / "model.safetensors").read_bytes()
    written = add_remote_code(VQVAEModel, tmp_path)
    assert (tmp_path / "modeling_vqvae.py") in written
    assert (tmp_path / "model.safetensors").read_bytes() == weights
    assert (
        json.loads((tmp_path / "config.json").read_text())["auto_map"]["AutoModel"]
        == "modeling_vqvae.VQVAEModel"
    )


def test_a_vqvae_saved_alone_leaves_its_pipeline_folders_pipeline_behind(tmp_path):
    """The pipeline's entry in config.json goes with the pipeline's code, which a model saved alone does not
    write."""
    vqvae, prior = saved_models(tmp_path)
    VQSamplePipeline(model=vqvae, prior=prior).save_pretrained(tmp_path / "pipe")
    VQVAEModel.from_pretrained(tmp_path / "pipe").save_pretrained(tmp_path / "alone")
    assert "custom_pipelines" not in json.loads((tmp_path / "alone" / "config.json").read_text())
    assert not (tmp_path / "alone" / "vq_sample.py").exists()


def test_a_loaded_model_with_the_package_installed_uses_the_package(tmp_path):
    saved_models(tmp_path)
    assert type(VQVAEModel.from_pretrained(tmp_path / "model")) is VQVAEModel


def test_a_pipeline_folder_samples_with_its_own_pipeline_where_the_package_is_not_installed(tmp_path):
    """`pipeline(model=folder, trust_remote_code=True)`: transformers reads the task from config.json's
    `custom_pipelines` and loads the pipeline's code from the folder; samples and prompted samples equal the
    installed package's `pipeline("vq-sample", ...)`, which the entry leaves working without trust_remote_code."""
    vqvae, prior = saved_models(tmp_path)
    VQSamplePipeline(model=vqvae, prior=prior).save_pretrained(tmp_path / "pipe")
    PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
        tmp_path / "prompt.png"
    )
    result = run_without_package(
        tmp_path / "pipe", tmp_path / "prompt.png", tmp_path / "outputs.pt",
        env_extra={"HF_MODULES_CACHE": str(tmp_path / "modules")}, script=REMOTE_PIPELINE_SCRIPT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    remote = torch.load(tmp_path / "outputs.pt")
    installed = quiet(pipeline("vq-sample", model=str(tmp_path / "pipe")))
    for remote_sample, sample in zip(
        remote["samples"], installed([0, 1], guidance_scale=2.0, seed=0, output_type="pt"), strict=True
    ):
        assert torch.equal(remote_sample, sample)
    prompted = installed(
        prompt=PIL.Image.open(tmp_path / "prompt.png"),
        class_labels=1,
        num_samples=2,
        seed=0,
        output_type="pt",
    )
    assert all(torch.equal(a, b) for a, b in zip(remote["prompted"], prompted, strict=True))
    assert "remote code reads examples in memory only" in remote["file_prompt_error"]

    config = json.loads((tmp_path / "pipe-resaved" / "config.json").read_text())
    assert config["custom_pipelines"][REMOTE_TASK]["impl"] == "vq_sample.VQSamplePipeline"
    files = {path.name: path.read_text() for path in (tmp_path / "pipe-resaved").glob("*.py")}
    assert set(files) == set(code_files(VQSamplePipeline.__module__)) | set(code_files(VQVAEModel.__module__))
    # The one import of the package is the data readers', guarded for folders without it.
    absolute = {
        name for name, source in files.items() if re.search(r"^\s*from hf_vqvae", source, re.MULTILINE)
    }
    assert absolute == {"prompting.py"}
