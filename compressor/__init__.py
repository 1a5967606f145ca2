"""Compressor stage: static-patch detection (RLT pixel test, EVS), event segmentation, token
merging inside events, and query-time token selection under a budget."""

from .config import CompressorSettings, SelectionSettings
from .errors import CompressorError, CompressorInputError
from .events import CutRules, EventSegmenter, Grid, segment_events, token_change_fraction
from .evs import evs_retained_count, evs_retention_mask, grid_positions, survivor_positions
from .merging import MergedTokens, merge_event_tokens
from .records import Event, EventStats, SelectedEvent, Selection
from .selection import allocate_budget, pick_tokens, pick_tokens_batched, select_tokens, token_relevance
from .stage import Compressor, warm_kernels
from .static import StaticPatches, StaticPatchFilter, merged_static_mask, psnr_db, static_patch_mask

# Per-frame analysers, PySceneDetect-style: one `process` method each, picked by name.
STAGE_PLUGINS = {"static_patches": StaticPatchFilter, "events": EventSegmenter}

__all__ = [
    "STAGE_PLUGINS",
    "Compressor",
    "CompressorError",
    "CompressorInputError",
    "CompressorSettings",
    "CutRules",
    "Event",
    "EventSegmenter",
    "EventStats",
    "Grid",
    "MergedTokens",
    "SelectedEvent",
    "Selection",
    "SelectionSettings",
    "StaticPatchFilter",
    "StaticPatches",
    "allocate_budget",
    "evs_retained_count",
    "evs_retention_mask",
    "grid_positions",
    "merge_event_tokens",
    "merged_static_mask",
    "pick_tokens",
    "pick_tokens_batched",
    "psnr_db",
    "segment_events",
    "select_tokens",
    "static_patch_mask",
    "survivor_positions",
    "token_change_fraction",
    "token_relevance",
    "warm_kernels",
]
