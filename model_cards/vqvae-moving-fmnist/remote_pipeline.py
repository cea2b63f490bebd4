# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""The vq-sample pipeline as remote code: a pipeline folder carries the pipeline's code beside the models' and names
it in config.json's `custom_pipelines`, so that `pipeline(model=folder, trust_remote_code=True)` samples where
hf_vqvae is not installed.

There the task has its own name, `REMOTE_TASK`. transformers gives a task named in `custom_pipelines` precedence
over a registered one and then asks for `trust_remote_code`: named "vq-sample", it would make the installed
package's own `pipeline("vq-sample", model=folder)` ask for it too.
"""

import os
from pathlib import Path

from .remote_code import update_config_file, write_remote_code

REMOTE_TASK = "vq-sample-remote-code"


def add_pipeline_code(pipeline_class: type, folder: str | os.PathLike) -> list[Path]:
    """Write the code of `pipeline_class` (its module and every module it imports relatively) into a saved pipeline
    folder, and register it in the folder's config.json as the `REMOTE_TASK` custom pipeline (beside any others).
    Returns the written code files."""
    impl = f"{pipeline_class.__module__.rsplit('.', 1)[-1]}.{pipeline_class.__name__}"
    entry = {"impl": impl, "pt": ["AutoModel"], "type": "multimodal"}
    update_config_file(
        folder,
        lambda config: {"custom_pipelines": {**config.get("custom_pipelines", {}), REMOTE_TASK: entry}},
    )
    return write_remote_code(pipeline_class, folder)


__all__ = ["REMOTE_TASK", "add_pipeline_code"]
