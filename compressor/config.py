"""Settings for the compressor stage (a section of `vidsight.settings.Settings`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class CompressorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
