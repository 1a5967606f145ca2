"""Device and dtype from the settings, and the seeded construction of random-weight models."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

M = TypeVar("M", bound=torch.nn.Module)


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when present, else CPU; other names as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """'auto' -> bfloat16 on CUDA, float32 elsewhere (CPU bf16 matmuls are slow and inexact)."""
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return _DTYPES[name]


@contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def build_seeded(make: Callable[[], M], seed: int, device: torch.device, dtype: torch.dtype) -> M:
    """Build a random-weight model on `device` with a fixed seed: same seed, same weights.

    The weights are drawn on the CPU in float32 (so a seed gives the same values on every device)
    and then moved; building a 7B-sized tower this way takes seconds, not minutes.
    """
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        with _default_dtype(torch.float32):
            model = make()
    finally:
        torch.random.set_rng_state(generator_state)
    return model.to(device=device, dtype=dtype).eval()
