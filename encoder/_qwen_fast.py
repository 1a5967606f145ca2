"""A faster forward pass of the stock Qwen2.5-VL vision tower, on its own weights.

Same arithmetic as transformers' `Qwen2_5_VisionTransformerPretrainedModel.forward` (RMSNorm in
float32, rope in float32, SiLU MLP, SDPA with the tower's scale), with differences that only
change speed:

- attention runs over all windows of all grids in one call (`_qwen_attention`);
- the index tables are built once per grid size (`_qwen_layout`);
- the patch embedding, a Conv3d whose stride equals its kernel, runs as one matrix product;
- the MLP's gate and up projections run as one matrix product, with the inner size zero-padded
  to a multiple of 64. The 7B tower's inner size, 3420, is not a multiple of 8: its bf16 rows
  are not 16-byte aligned and cuBLAS falls back to sm80 kernels (H100 profile: 113 of 258 ms).
  Padded columns are exactly zero (silu(0) * 0, and zero columns of the down projection), so
  the result is unchanged; the cost is a second copy of the MLP weights (0.84 GB for 7B, bf16).

Grids of one size are batched along the token axis; windows and full-attention segments never
cross grids.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from ._qwen_attention import Attention, segment_attention
from ._qwen_layout import GridLayout, grid_layout, rope_tables
from .errors import ModelLoadError


class BlockWeights(NamedTuple):
    norm1: torch.Tensor
    qkv_w: torch.Tensor
    qkv_b: torch.Tensor
    proj_w: torch.Tensor
    proj_b: torch.Tensor
    norm2: torch.Tensor
    gate_up_w: torch.Tensor  # [2 * inner_padded, C]: gate rows, then up rows
    gate_up_b: torch.Tensor
    down_w: torch.Tensor  # [C, inner_padded]
    down_b: torch.Tensor


_MLP_ALIGN = 64


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    x32 = x.float()
    x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x32.to(x.dtype)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rope on [N, heads, dim] in float32, cast back (as the tower does)."""
    x32 = x.float()
    half = x32.shape[-1] // 2
    rotated = torch.cat([-x32[..., half:], x32[..., :half]], dim=-1)
    return (x32 * cos + rotated * sin).to(x.dtype)


def block_step(
    x: torch.Tensor,
    w: BlockWeights,
    cos: torch.Tensor,
    sin: torch.Tensor,
    attend: Attention,
    heads: int,
    eps: float,
) -> torch.Tensor:
    """One vision block on x [N, C]; cos/sin [N, 1, head_dim] float32."""
    tokens, channels = x.shape
    qkv = F.linear(rms_norm(x, w.norm1, eps), w.qkv_w, w.qkv_b).view(tokens, 3, heads, -1)
    q, k, v = qkv.unbind(1)
    attended = attend(rotate(q, cos, sin), rotate(k, cos, sin), v)
    x = x + F.linear(attended.reshape(tokens, channels), w.proj_w, w.proj_b)
    gate, up = F.linear(rms_norm(x, w.norm2, eps), w.gate_up_w, w.gate_up_b).chunk(2, dim=-1)
    return x + F.linear(F.silu(gate) * up, w.down_w, w.down_b)


@torch.no_grad()
def _block_weights(block: Any) -> BlockWeights:
    attn, mlp = block.attn, block.mlp
    inner, channels = mlp.gate_proj.weight.shape
    padded = -(-inner // _MLP_ALIGN) * _MLP_ALIGN
    like = mlp.gate_proj.weight
    gate_up_w = like.new_zeros(2 * padded, channels)
    gate_up_b = like.new_zeros(2 * padded)
    for offset, linear in ((0, mlp.gate_proj), (padded, mlp.up_proj)):
        gate_up_w[offset : offset + inner] = linear.weight
        gate_up_b[offset : offset + inner] = linear.bias
    down_w = like.new_zeros(channels, padded)
    down_w[:, :inner] = mlp.down_proj.weight
    return BlockWeights(
        block.norm1.weight, attn.qkv.weight, attn.qkv.bias, attn.proj.weight, attn.proj.bias,
        block.norm2.weight, gate_up_w, gate_up_b, down_w, mlp.down_proj.bias,
    )  # fmt: skip


class _Plan(NamedTuple):
    """Everything the forward pass needs for G grids of one size, on the device."""

    layout: GridLayout
    cos: torch.Tensor  # [G * P, 1, head_dim] float32, window order
    sin: torch.Tensor
    window_attention: Attention
    full_attention: Attention
    window_perm: torch.Tensor  # [units] long
    inverse_perm: torch.Tensor  # [units] long
    step: Any  # block_step, or its compiled form for shapes prepared by compile_plan


class FastQwenTower:
    """Runs a stock tower module's weights with batched window attention."""

    def __init__(self, visual: Any, *, use_varlen: bool = True) -> None:
        config = visual.config
        if config.hidden_act != "silu":
            raise ModelLoadError(
                f"fast Qwen2.5-VL tower supports hidden_act 'silu', got {config.hidden_act!r}"
            )
        self.visual = visual
        self.heads = int(config.num_heads)
        self.head_dim = int(config.hidden_size) // self.heads
        self.scale = self.head_dim**-0.5
        self.merge = int(config.spatial_merge_size)
        self.patch_size = int(config.patch_size)
        self.window_size = int(config.window_size)
        self.full_blocks = frozenset(int(i) for i in config.fullatt_block_indexes)
        self.eps = float(visual.blocks[0].norm1.variance_epsilon)
        self.use_varlen = use_varlen
        self.blocks = [_block_weights(b) for b in visual.blocks]
        self._compiled_step: Any = None
        self._plans: dict[tuple[int, int, int], _Plan] = {}

    @property
    def device(self) -> torch.device:
        device: torch.device = self.visual.patch_embed.proj.weight.device
        return device

    def plan(self, grids: int, grid_hw: tuple[int, int]) -> _Plan:
        key = (grids, *grid_hw)
        if key not in self._plans:
            self._plans[key] = self._make_plan(grids, grid_hw)
        return self._plans[key]

    def _make_plan(self, grids: int, grid_hw: tuple[int, int]) -> _Plan:
        device = self.device
        layout = grid_layout(*grid_hw, self.merge, self.window_size, self.patch_size)
        inv_freq = self.visual.rotary_pos_emb.inv_freq.to(device)
        cos, sin = rope_tables(layout.positions.to(device), inv_freq)
        return _Plan(
            layout=layout,
            cos=cos.repeat(grids, 1).unsqueeze(1),
            sin=sin.repeat(grids, 1).unsqueeze(1),
            window_attention=segment_attention(
                layout.window_lengths * grids, self.scale, device, use_varlen=self.use_varlen
            ),
            full_attention=segment_attention([layout.patches] * grids, self.scale, device, use_varlen=False),
            window_perm=layout.window_perm.to(device),
            inverse_perm=layout.inverse_perm.to(device),
            step=block_step,
        )

    def compile_plan(self, grids: int, grid_hw: tuple[int, int]) -> None:
        """Use torch.compile'd blocks for this batch shape only.

        Shapes are static (one compile per shape and attention kind, about 10 s for the 7B tower),
        so other shapes keep the eager step instead of recompiling in the middle of a stream.
        """
        if self._compiled_step is None:
            self._compiled_step = torch.compile(block_step, dynamic=False)
        key = (grids, *grid_hw)
        self._plans[key] = self.plan(grids, grid_hw)._replace(step=self._compiled_step)

    def uncompile_plan(self, grids: int, grid_hw: tuple[int, int]) -> None:
        key = (grids, *grid_hw)
        self._plans[key] = self.plan(grids, grid_hw)._replace(step=block_step)

    def forward(self, pixel_values: torch.Tensor, grids: int, grid_hw: tuple[int, int]) -> torch.Tensor:
        """pixel_values [G * P, patch_dim] -> merged tokens [G, units, D_llm], processor order."""
        plan = self.plan(grids, grid_hw)
        x = self._window_order(self._embed(pixel_values), grids, plan.window_perm)
        for index, weights in enumerate(self.blocks):
            attend = plan.full_attention if index in self.full_blocks else plan.window_attention
            x = plan.step(x, weights, plan.cos, plan.sin, attend, self.heads, self.eps)
        merged = self.visual.merger(x).view(grids, plan.layout.window_perm.numel(), -1)
        return merged[:, plan.inverse_perm]

    def _embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        weight = self.visual.patch_embed.proj.weight  # [C, 3, tp, p, p]
        return F.linear(pixel_values.to(weight.dtype), weight.view(weight.shape[0], -1))

    def _window_order(self, x: torch.Tensor, grids: int, window_perm: torch.Tensor) -> torch.Tensor:
        unit = self.merge * self.merge
        return x.view(grids, -1, unit, x.shape[-1])[:, window_perm].reshape(x.shape)
