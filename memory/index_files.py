"""How a shard's index is written into snapshots without rewriting every vector each time.

A snapshot folder holds the HNSW graph (written without its vectors) and the rows (`ids`, `alive`).
The vectors themselves go to chunk files in `snapshots/vectors/`, named `<generation>-<start>-<end>.npy`
for storage rows [start, end). Rows only append within one index generation, so a snapshot writes
one new chunk for the rows added since the previous snapshot and lists the earlier chunks again; a
rebuild (new generation) writes all rows once. Chunks no snapshot lists are pruned.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .vector_index import EventIndex, HnswParams

CHUNKS = "vectors"


def _span(name: str) -> tuple[str, int, int]:
    generation, start, end = Path(name).stem.split("-")
    return generation, int(start), int(end)


def _save_durably(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_index(index: EventIndex, folder: Path, chunks_dir: Path, previous: list[str]) -> list[str]:
    """Write `index` into the snapshot folder; returns the chunk names that hold its vectors.
    `previous`: the chunks the last snapshot listed (reused when of the same generation)."""
    chunks_dir.mkdir(parents=True, exist_ok=True)
    chunks = [c for c in previous if _span(c)[0] == index.generation and (chunks_dir / c).exists()]
    covered = _span(chunks[-1])[2] if chunks else 0
    if covered > index.ntotal:  # cannot happen within a generation; start over rather than guess
        chunks, covered = [], 0
    if index.ntotal > covered:
        name = f"{index.generation}-{covered:012d}-{index.ntotal:012d}.npy"
        _save_durably(chunks_dir / name, index.storage_view()[covered : index.ntotal])
        chunks.append(name)
    if index.kind == "hnsw":
        index.write_graph(folder / "graph.faiss")
    np.savez(folder / "rows.npz", ids=index.ids, alive=index.live_mask())
    return chunks


def read_index(
    folder: Path, chunks_dir: Path, chunks: list[str], dim: int, generation: str, hnsw: HnswParams
) -> EventIndex:
    rows = np.load(folder / "rows.npz")
    graph = folder / "graph.faiss"
    vectors = [np.load(chunks_dir / c, mmap_mode="r") for c in chunks]
    return EventIndex.assemble(
        dim, hnsw, graph if graph.exists() else None, vectors, rows["ids"], rows["alive"], generation
    )


def prune_chunks(chunks_dir: Path, keep: list[str]) -> None:
    if not chunks_dir.exists():
        return
    wanted = set(keep)
    for path in chunks_dir.iterdir():
        if path.name not in wanted:
            path.unlink(missing_ok=True)
