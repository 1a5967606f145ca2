"""Index tables of the Qwen2.5-VL tower for one grid size: window order, attention segments, rope.

Pure functions of (grid h, grid w) and the config; computed once per size and cached on the
device, so the forward pass itself has no Python over windows. Patches of one temporal grid come
from the processor in merge-block order (4 patches of a 2x2 block are consecutive); the tower
regroups the blocks window by window (`window_perm`), attends inside windows of
`window_size // patch_size // merge` blocks on most layers and over the whole grid on the
`fullatt_block_indexes` layers, and puts the blocks back in processor order after the merger.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True, slots=True)
class GridLayout:
    """Tables for one grid of (grid_h, grid_w) patches; `units` are merge blocks."""

    grid_hw: tuple[int, int]  # patches
    window_perm: torch.Tensor  # [units] long: window-order position -> processor-order block
    inverse_perm: torch.Tensor  # [units] long: processor-order block -> window-order position
    window_lengths: list[int]  # patches per window, window order, empty windows dropped
    positions: torch.Tensor  # [units * merge^2, 2] long: (row, col) per patch, window order

    @property
    def patches(self) -> int:
        return self.grid_hw[0] * self.grid_hw[1]

    @property
    def has_uniform_windows(self) -> bool:
        return len(set(self.window_lengths)) == 1


def grid_layout(grid_h: int, grid_w: int, merge: int, window_size_px: int, patch_size: int) -> GridLayout:
    """The tower's own window order for one (grid_h, grid_w) grid (transformers' get_window_index)."""
    units_h, units_w = grid_h // merge, grid_w // merge
    window_units = window_size_px // merge // patch_size
    pad_h, pad_w = -units_h % window_units, -units_w % window_units
    index = torch.arange(units_h * units_w).view(units_h, units_w)
    padded = torch.nn.functional.pad(index, (0, pad_w, 0, pad_h), value=-1)
    wins_h, wins_w = padded.shape[0] // window_units, padded.shape[1] // window_units
    windows = padded.view(wins_h, window_units, wins_w, window_units).permute(0, 2, 1, 3)
    windows = windows.reshape(wins_h * wins_w, window_units * window_units)
    units_per_window = (windows >= 0).sum(dim=1)
    window_perm = windows[windows >= 0]
    lengths = [int(n) * merge * merge for n in units_per_window.tolist() if n > 0]
    positions = _patch_positions(grid_h, grid_w, merge)
    positions = positions.view(units_h * units_w, merge * merge, 2)[window_perm].view(-1, 2)
    return GridLayout(
        grid_hw=(grid_h, grid_w),
        window_perm=window_perm,
        inverse_perm=torch.argsort(window_perm),
        window_lengths=lengths,
        positions=positions,
    )


def _patch_positions(grid_h: int, grid_w: int, merge: int) -> torch.Tensor:
    """(row, col) of every patch in processor (merge-block) order: [grid_h * grid_w, 2]."""
    rows = torch.arange(grid_h).view(-1, 1).expand(grid_h, grid_w)
    cols = torch.arange(grid_w).view(1, -1).expand(grid_h, grid_w)
    shape = (grid_h // merge, merge, grid_w // merge, merge)
    rows = rows.reshape(shape).permute(0, 2, 1, 3).reshape(-1)
    cols = cols.reshape(shape).permute(0, 2, 1, 3).reshape(-1)
    return torch.stack([rows, cols], dim=-1)


def rope_tables(positions: torch.Tensor, inv_freq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Axial 2D rope: positions [N, 2] -> (cos, sin) [N, head_dim] float32.

    The head dim is [rows | cols | rows | cols], each a quarter, as the tower lays it out.
    """
    freqs = positions[..., None].float() * inv_freq.float()  # [N, 2, head_dim / 4]
    angles = torch.cat([freqs[:, 0], freqs[:, 1]], dim=-1)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def padded_segments(lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Contiguous segments -> tables to run them as one padded batch.

    Returns gather [S, L] (token index per slot; padding slots repeat the segment's first token),
    key_mask [S, 1, 1, L] bool (True = real key), and unpad [N] (flat slot of every real token, in
    token order), with L the longest segment.
    """
    longest = max(lengths)
    starts = torch.tensor([0, *lengths[:-1]]).cumsum(0)
    counts = torch.tensor(lengths)
    slots = torch.arange(longest)
    valid = slots.view(1, -1) < counts.view(-1, 1)
    gather = starts.view(-1, 1) + torch.where(valid, slots.view(1, -1), 0)
    unpad = valid.flatten().nonzero().squeeze(1)
    return gather, valid.view(len(lengths), 1, 1, longest), unpad
