"""Attention over many independent segments in one call (windows of every grid, or whole grids).

transformers' SDPA path for the Qwen2.5-VL tower splits the packed sequence into windows and calls
attention once per window from Python: 16 windows per 448x448 grid on 28 of 32 layers. Here all
segments go through one kernel call:

- `UniformAttention`: every segment has the same length (448x448 frames, any size that is a
  multiple of 112 px): a reshape to [segments, heads, length, dim] and one SDPA call.
- `VarlenAttention`: ragged segments on CUDA through `torch.nn.attention.varlen.varlen_attn`
  (FlashAttention's variable-length kernel), where this torch has it.
- `PaddedAttention`: ragged segments anywhere: gathered into a padded batch with a key mask.

Every variant takes q, k, v [N, heads, head_dim] with segments contiguous along N, and returns
[N, heads, head_dim]; none branches in Python on tensor values, so all are CUDA-graph friendly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ._qwen_layout import padded_segments

Attention = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class UniformAttention:
    def __init__(self, segment_length: int, scale: float) -> None:
        self.segment_length = segment_length
        self.scale = scale

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        tokens, heads, dim = q.shape
        segments = tokens // self.segment_length

        def split(t: torch.Tensor) -> torch.Tensor:  # [S, heads, L, dim]
            return t.view(segments, self.segment_length, heads, dim).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(q), split(k), split(v), scale=self.scale)
        return out.transpose(1, 2).reshape(tokens, heads, dim)


class PaddedAttention:
    def __init__(self, lengths: list[int], scale: float, device: torch.device) -> None:
        gather, key_mask, unpad = padded_segments(lengths)
        self.gather = gather.to(device)  # [S, L]
        self.key_mask = key_mask.to(device)  # [S, 1, 1, L]
        self.unpad = unpad.to(device)  # [N]
        self.scale = scale

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        heads, dim = q.shape[1:]

        def pad(t: torch.Tensor) -> torch.Tensor:  # [S, heads, L, dim]
            return t[self.gather].transpose(1, 2)

        out = F.scaled_dot_product_attention(
            pad(q), pad(k), pad(v), attn_mask=self.key_mask, scale=self.scale
        )
        return out.transpose(1, 2).reshape(-1, heads, dim)[self.unpad]


class VarlenAttention:
    def __init__(self, lengths: list[int], scale: float, device: torch.device) -> None:
        from torch.nn.attention.varlen import varlen_attn

        self._varlen_attn: Any = varlen_attn
        self.cu_seqlens = torch.tensor([0, *lengths], device=device).cumsum(0).to(torch.int32)
        self.max_length = max(lengths)
        self.scale = scale

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        cu, longest = self.cu_seqlens, self.max_length
        out: torch.Tensor = self._varlen_attn(q, k, v, cu, cu, longest, longest, scale=self.scale)
        return out


def has_varlen() -> bool:
    try:
        from torch.nn.attention.varlen import varlen_attn  # noqa: F401
    except ImportError:
        return False
    return True


def segment_attention(
    lengths: list[int], scale: float, device: torch.device, *, use_varlen: bool
) -> Attention:
    """The cheapest exact way to attend within each of these contiguous segments."""
    if len(set(lengths)) == 1:
        return UniformAttention(lengths[0], scale)
    if use_varlen and device.type == "cuda" and has_varlen():
        return VarlenAttention(lengths, scale, device)
    return PaddedAttention(lengths, scale, device)
