"""Model architectures by name, for offline and benchmark use.

Real deployments load weights with `from_pretrained(model_id)`. Where no weights can be had
(this workplace has no model hub), the same architecture is built from a config with random
weights: "tiny" for tests on a CPU, the full-size configs for speed measurements on a GPU
(speed does not depend on the values of the weights). The full-size numbers are copied from
the published config.json of each model.
"""

from __future__ import annotations

from typing import Any

from transformers import Qwen2_5_VLConfig, SiglipConfig

# Qwen2.5-VL ------------------------------------------------------------------------------------

_QWEN25VL_VISION_FULL: dict[str, Any] = {
    "depth": 32,
    "hidden_size": 1280,
    "intermediate_size": 3420,
    "num_heads": 16,
    "in_channels": 3,
    "hidden_act": "silu",
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "window_size": 112,
    "fullatt_block_indexes": [7, 15, 23, 31],
    "tokens_per_second": 2,
}

_QWEN25VL_TEXT: dict[str, dict[str, Any]] = {
    "7B": {
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "vocab_size": 152064,
        "max_position_embeddings": 128000,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": False,
    },
    "3B": {
        "hidden_size": 2048,
        "intermediate_size": 11008,
        "num_hidden_layers": 36,
        "num_attention_heads": 16,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "max_position_embeddings": 128000,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": True,
    },
    "tiny": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "max_position_embeddings": 32768,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": False,
    },
}

_MROPE_SECTION = {"7B": [16, 24, 24], "3B": [16, 24, 24], "tiny": [2, 3, 3]}

_QWEN25VL_VISION_TINY: dict[str, Any] = {
    **_QWEN25VL_VISION_FULL,
    "depth": 4,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_heads": 2,
    "fullatt_block_indexes": [1, 3],
}

QWEN25VL_MODEL_IDS = {"7B": "Qwen/Qwen2.5-VL-7B-Instruct", "3B": "Qwen/Qwen2.5-VL-3B-Instruct"}


def qwen25vl_config(size: str = "tiny") -> Qwen2_5_VLConfig:
    """Qwen2.5-VL config by size: "7B", "3B" (published shapes) or "tiny" (tests)."""
    if size not in _QWEN25VL_TEXT:
        raise ValueError(f"Qwen2.5-VL size must be one of {sorted(_QWEN25VL_TEXT)}, got {size!r}")
    text = dict(_QWEN25VL_TEXT[size])
    text["rope_scaling"] = {"type": "mrope", "mrope_section": _MROPE_SECTION[size]}
    vision = dict(_QWEN25VL_VISION_TINY if size == "tiny" else _QWEN25VL_VISION_FULL)
    vision["out_hidden_size"] = text["hidden_size"]
    return Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=151655,
        video_token_id=151656,
        vision_start_token_id=151652,
        vision_end_token_id=151653,
        tie_word_embeddings=text["tie_word_embeddings"],
    )


# SigLIP ----------------------------------------------------------------------------------------

_SIGLIP: dict[str, dict[str, Any]] = {
    # google/siglip-so400m-patch14-384
    "so400m": {
        "text": {
            "hidden_size": 1152,
            "intermediate_size": 4304,
            "num_hidden_layers": 27,
            "num_attention_heads": 16,
            "vocab_size": 32000,
            "max_position_embeddings": 64,
            "pad_token_id": 1,
            "bos_token_id": 1,
            "eos_token_id": 1,
        },
        "vision": {
            "hidden_size": 1152,
            "intermediate_size": 4304,
            "num_hidden_layers": 27,
            "num_attention_heads": 16,
            "image_size": 384,
            "patch_size": 14,
        },
    },
    "tiny": {
        "text": {
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "vocab_size": 32000,
            "max_position_embeddings": 64,
            "pad_token_id": 1,
            "bos_token_id": 1,
            "eos_token_id": 1,
        },
        "vision": {
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 224,
            "patch_size": 16,
        },
    },
}

SIGLIP_MODEL_IDS = {"so400m": "google/siglip-so400m-patch14-384"}


def siglip_config(size: str = "tiny") -> SiglipConfig:
    """SigLIP config by size: "so400m" (published shapes) or "tiny" (tests)."""
    if size not in _SIGLIP:
        raise ValueError(f"SigLIP size must be one of {sorted(_SIGLIP)}, got {size!r}")
    return SiglipConfig(text_config=dict(_SIGLIP[size]["text"]), vision_config=dict(_SIGLIP[size]["vision"]))
