"""Read only a sub-module's tensors from a transformers checkpoint (local folder or hub id).

A Qwen2.5-VL checkpoint is mostly language model; the vision tower is about 670M of its 8B
parameters. Reading the shard index and only the tower's keys avoids building the whole VLM.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .errors import ModelLoadError

_INDEX = "model.safetensors.index.json"
_SINGLE = "model.safetensors"


def _resolve(model_id: str, filename: str) -> Path | None:
    """Path of `filename` in a local folder or the hub cache/download; None where it does not exist."""
    local = Path(model_id)
    if local.is_dir():
        path = local / filename
        return path if path.exists() else None
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(model_id, filename))
    except Exception:  # the hub raises several unrelated types for "not there"
        return None


def load_prefixed_state(model_id: str, prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Tensors whose names start with the first prefix that matches any key, prefix stripped."""
    from safetensors import safe_open

    index_path = _resolve(model_id, _INDEX)
    if index_path is not None:
        weight_map: dict[str, str] = json.loads(index_path.read_text())["weight_map"]
    else:
        single = _resolve(model_id, _SINGLE)
        if single is None:
            raise ModelLoadError(f"no {_INDEX} or {_SINGLE} found for model {model_id!r}")
        with safe_open(str(single), framework="pt") as f:
            weight_map = {key: _SINGLE for key in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    prefix = next((p for p in prefixes if any(k.startswith(p) for k in weight_map)), None)
    if prefix is None:
        raise ModelLoadError(f"model {model_id!r} has no tensors under any of {list(prefixes)}")
    by_file: dict[str, list[str]] = {}
    for key, filename in weight_map.items():
        if key.startswith(prefix):
            by_file.setdefault(filename, []).append(key)
    state: dict[str, torch.Tensor] = {}
    for filename, keys in by_file.items():
        path = _resolve(model_id, filename)
        if path is None:
            raise ModelLoadError(f"shard {filename!r} of model {model_id!r} is missing")
        with safe_open(str(path), framework="pt") as f:
            for key in keys:
                state[key[len(prefix) :]] = f.get_tensor(key)
    return state
