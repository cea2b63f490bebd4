"""Model folders that load with transformers alone: every saved folder carries the model's code and an `auto_map`,
so `AutoModel.from_pretrained(folder, trust_remote_code=True)` works where this package is not installed (as
Hub models with custom code ship, e.g. BAAI's Emu3 vision tokenizer).

The code is the package's own modules, copied flat into the folder: the model's module and every module it imports
relatively, transitively, with `from ..x.y import` rewritten to `from .y import` (transformers' remote-code loader
follows only imports from the same folder). Each file starts with a header naming the package version that wrote
it, and config.json records the same version, so that a folder whose code and config come from different versions
is refused with the file named instead of failing somewhere inside.
"""

import ast
import importlib
import importlib.metadata
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

VERSION_KEY = "hf_vqvae_version"
# The subfolder of a pipeline folder that holds the prior (the VQ-VAE is at the root).
PRIOR_SUBFOLDER = "prior"
HEADER = "# hf_vqvae {version}: model code saved beside the weights, loaded with trust_remote_code=True.\n"
_HEADER_PATTERN = re.compile(r"\A# hf_vqvae (\S+): model code saved beside the weights[^\n]*\n")
_RELATIVE_IMPORT = re.compile(r"^(\s*)from \.+(?:\w+\.)*(\w+) import", re.MULTILINE)


def own_version(module_name: str) -> str:
    """The package version of a module's code: its header's when it was loaded from a folder as remote code,
    else the installed package's."""
    found = _HEADER_PATTERN.match(Path(sys.modules[module_name].__file__).read_text())
    return found.group(1) if found else importlib.metadata.version("hf_vqvae")


def code_files(module_name: str) -> dict[str, str]:
    """`{file name: source}` of a module and every module it imports relatively, transitively, each source with
    its relative imports flattened to the folder and the version header on top."""
    version = own_version(module_name)
    files, pending = {}, [module_name]
    while pending:
        module = importlib.import_module(pending.pop())
        path = Path(module.__file__)
        if path.name in files:
            continue
        source = _HEADER_PATTERN.sub("", path.read_text(), count=1)
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                name = "." * node.level + (node.module or "")
                pending.append(importlib.util.resolve_name(name, module.__package__))
        files[path.name] = HEADER.format(version=version) + _RELATIVE_IMPORT.sub(r"\1from .\2 import", source)
    return files


def auto_map(model_class: type) -> dict[str, str]:
    """The config.json `auto_map` entries that point transformers' Auto classes at the copied files."""
    config_class = model_class.config_class
    return {
        "AutoConfig": f"{config_class.__module__.rsplit('.', 1)[-1]}.{config_class.__name__}",
        "AutoModel": f"{model_class.__module__.rsplit('.', 1)[-1]}.{model_class.__name__}",
    }


def write_remote_code(model_class: type, save_directory: str | os.PathLike) -> list[Path]:
    """Write the code of `model_class` into `save_directory`, and, for a model saved into the `prior/` subfolder of
    a pipeline folder, into that folder too: transformers looks for remote code at the root of a repo even when
    the model loads from a subfolder (`AutoModel.from_pretrained(repo, subfolder="prior",
    trust_remote_code=True)`). The modules the two models share are the same files. Returns the written paths."""
    folder = Path(save_directory)
    folders = [folder, folder.parent] if folder.name == PRIOR_SUBFOLDER else [folder]
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, source in sorted(code_files(model_class.__module__).items()):
        for target in folders:
            (target / name).write_text(source)
            written.append(target / name)
    return written


def add_remote_code(
    model_class: type, folder: str | os.PathLike, extra_auto_map: dict[str, str] | None = None
) -> list[Path]:
    """Make an already saved folder loadable as remote code without rewriting its weights: write the code and
    add `auto_map` (with `extra_auto_map`, e.g. the processor's) and the version to its config.json."""
    update_config_file(
        folder,
        lambda config: {
            "auto_map": {**auto_map(model_class), **(extra_auto_map or {})},
            VERSION_KEY: own_version(model_class.__module__),
        },
    )
    return write_remote_code(model_class, folder)


def update_config_file(folder: str | os.PathLike, changes: Callable[[dict], dict]) -> None:
    """Rewrite a saved folder's config.json with the fields `changes(config)` gives (sorted, as transformers
    writes it), leaving its other fields as they are."""
    config_file = Path(folder, "config.json")
    config = json.loads(config_file.read_text())
    config |= changes(config)
    config_file.write_text(json.dumps(dict(sorted(config.items())), indent=2) + "\n")


def is_remote_code(cls: type) -> bool:
    """Whether `cls` was loaded from a folder's code by transformers (`trust_remote_code=True`), not from the
    installed package."""
    return cls.__module__.startswith("transformers_modules")


def check_code_version(config_class: type, config_version: str | None) -> None:
    """Raises `ValueError` when a config loaded as remote code was written by another package version than the
    code file beside it (the folder's code and its config.json come from different saves)."""
    module_name = config_class.__module__
    if config_version is None or not is_remote_code(config_class):
        return
    code_version = own_version(module_name)
    if code_version != config_version:
        raise ValueError(
            f"{Path(sys.modules[module_name].__file__).name} in this folder is hf_vqvae {code_version} code, but "
            f"config.json was written by hf_vqvae {config_version}: the folder mixes two saves. Save the model "
            "again (save_pretrained writes matching code), or load it with hf_vqvae installed and without "
            "trust_remote_code."
        )


class RemoteCodeMixin:
    """`save_pretrained` that also writes the model's code and points config.json's `auto_map` at it."""

    def remote_code_auto_map(self) -> dict[str, str]:
        """The `auto_map` written into config.json (models with a processor add it)."""
        return auto_map(type(self))

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        if os.path.isfile(save_directory):
            raise NotADirectoryError(
                f"save_directory {os.fspath(save_directory)!r} is a file; give a folder to save the model to."
            )
        self.config.auto_map = self.remote_code_auto_map()
        # A config loaded from a pipeline folder names the pipeline's code (`custom_pipelines`), which a model saved
        # on its own does not carry; the pipeline's save writes both again.
        self.config.__dict__.pop("custom_pipelines", None)
        setattr(self.config, VERSION_KEY, own_version(type(self).__module__))
        if kwargs.get("is_main_process", True):
            # Before the weights: `push_to_hub=True` uploads the folder as transformers leaves it.
            write_remote_code(type(self), save_directory)
        super().save_pretrained(save_directory, *args, **kwargs)
