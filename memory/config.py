"""Settings for the memory stage (a section of `vidsight.settings.Settings`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class MemorySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
