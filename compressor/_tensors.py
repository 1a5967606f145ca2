"""Token arithmetic shared by segmentation and merging: torch, on whatever device the tokens are.

The encoder may hand its tokens over as tensors on its GPU; tests and offline tools pass numpy.
Each grid's tokens are turned, once, into float32 unit rows and their norms (`unit_rows`), which
the token-change test, the merge's cosine test and the merged means all reuse. Half-precision
tokens are never computed in: numpy's float16 math is emulated and very slow, torch's float16
conversion on the CPU is slow too (numpy's cast uses F16C), and float16 sums lose the mean of long
runs. float64 tokens (tests) stay float64.
"""

from __future__ import annotations

import numpy as np
import torch


def as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A tensor view of x (numpy arrays are shared when writable; read-only ones are copied,
    since torch cannot hold a read-only buffer)."""
    if isinstance(x, torch.Tensor):
        return x
    return torch.from_numpy(x if x.flags.writeable else x.copy())


def to_compute(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """x as float32 (float64 stays float64), on its device. May share memory with x: never write to it."""
    if isinstance(x, torch.Tensor):
        return x.to(torch.promote_types(x.dtype, torch.float32))
    return as_tensor(np.asarray(x, dtype=np.promote_types(x.dtype, np.float32)))


def unit_rows(tokens: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """tokens [..., D] -> (rows scaled to unit norm [..., D], their norms [...]); zero rows stay zero."""
    x = to_compute(tokens)
    norms = torch.linalg.vector_norm(x, dim=-1)
    safe = torch.where(norms == 0, torch.ones_like(norms), norms)
    return x / safe.unsqueeze(-1), norms


def row_dots(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[P] dot products of the rows of a and b ([P, D]); a fused multiply-sum (linalg.vecdot and
    einsum take several times longer on the CPU)."""
    return (a * b).sum(dim=-1)


def changed_fraction(prev_units: torch.Tensor, cur_units: torch.Tensor, similarity: float) -> float:
    """Share of positions p whose cosine between prev_units[p] and cur_units[p] ([P, D] unit rows)
    is below `similarity`. One host sync: the caller needs the number."""
    cos = row_dots(prev_units, cur_units)
    return float((cos < similarity).float().mean())


def unit_rows_of_many(sources: list[np.ndarray | torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`unit_rows` of several [P, D] token arrays at once: one stacked pass per group of the same
    shape, dtype and kind (numpy or a device); results in the order of `sources`."""
    out: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(sources)
    groups: dict[tuple[object, ...], list[int]] = {}
    for i, x in enumerate(sources):
        where: object = x.device if isinstance(x, torch.Tensor) else "numpy"
        groups.setdefault((where, str(x.dtype), tuple(x.shape)), []).append(i)
    for (where, _, _), members in groups.items():
        parts = [sources[i] for i in members]
        stacked = np.stack(parts) if where == "numpy" else torch.stack(parts)  # type: ignore[arg-type]
        units, norms = unit_rows(stacked)
        for k, i in enumerate(members):
            out[i] = (units[k], norms[k])
    return out  # type: ignore[return-value]


def changed_fractions(pairs: list[tuple[torch.Tensor, torch.Tensor]], similarity: float) -> list[float]:
    """`changed_fraction` of several (prev_units, cur_units) pairs of one shape and device, with
    one host sync for all of them."""
    if not pairs:
        return []
    # Stacked first: two launches for the batch, where a multiply and a sum per pair were ~60
    # launches per encoder batch.
    cos = row_dots(torch.stack([a for a, _ in pairs]), torch.stack([b for _, b in pairs]))  # [n, P]
    return [float(x) for x in (cos < similarity).float().mean(dim=1).tolist()]
