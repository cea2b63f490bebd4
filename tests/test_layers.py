"""The package's layers import one way: cli -> training / pipelines / evaluation -> data -> models. Model files
import only torch, transformers, numpy and the model package itself, so that they can ship as remote code."""

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "hf_vqvae"
# What each layer may not import (its own layer and those below it are fine).
FORBIDDEN = {
    "models": {"data", "pipelines", "evaluation", "training", "cli"},
    "data": {"pipelines", "evaluation", "training", "cli"},
    "pipelines": {"evaluation", "training", "cli"},
    "evaluation": {"training", "cli"},
    "training": {"cli"},
}
# transformers itself depends on all of these, so a plain transformers environment has them.
MODEL_THIRD_PARTY = {"torch", "transformers", "numpy", "safetensors", "huggingface_hub", "tqdm"}
# Processors also need Pillow, as transformers' own image processors do (its "vision" extra).
PROCESSOR_THIRD_PARTY = MODEL_THIRD_PARTY | {"PIL"}


def imported_layers(path: Path) -> set[str]:
    """The hf_vqvae sub-packages a file imports, relative imports resolved."""
    package = path.relative_to(PACKAGE).parent.parts
    layers = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(package[: len(package) - node.level + 1])
            target = base + (node.module.split(".") if node.module else [])
            if target:
                layers.add(target[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hf_vqvae."):
            layers.add(node.module.split(".")[1])
    return layers


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_only_downwards(layer):
    wrong = {
        str(path.relative_to(PACKAGE)): sorted(imported_layers(path) & FORBIDDEN[layer])
        for path in (PACKAGE / layer).rglob("*.py")
    }
    assert not {file: layers for file, layers in wrong.items() if layers}


def test_model_files_import_only_torch_transformers_and_the_models():
    for path in (PACKAGE / "models").rglob("*.py"):
        tree = ast.parse(path.read_text())
        # transformers' remote-code check skips imports inside try blocks (optional dependencies), as here.
        optional = {
            id(n) for t in ast.walk(tree) if isinstance(t, ast.Try) for s in t.body for n in ast.walk(s)
        }
        for node in ast.walk(tree):
            if id(node) in optional:
                continue
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module.split(".")[0]]
            else:
                continue
            allowed = PROCESSOR_THIRD_PARTY if "processing" in path.name else MODEL_THIRD_PARTY
            outside = [n for n in names if n not in allowed | sys.stdlib_module_names]
            assert not outside, f"{path.relative_to(PACKAGE)} imports {outside}"


def test_the_library_never_imports_examples():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        modules = [
            alias.name
            for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.Import)
            for alias in node.names
        ] + [node.module or "" for node in ast.walk(ast.parse(text)) if isinstance(node, ast.ImportFrom)]
        assert not any(module.split(".")[0] == "examples" for module in modules), path
        assert "spec_from_file_location" not in text, f"{path} loads a file by path"


def test_each_module_runs_its_main_once():
    for path in PACKAGE.rglob("*.py"):
        assert path.read_text().count('if __name__ == "__main__":') <= 1, path


@pytest.mark.parametrize("module", ["hf_vqvae.training.train_vqvae", "hf_vqvae.training.train_prior"])
def test_training_modules_run_with_python_m(module):
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("usage:") == 1
