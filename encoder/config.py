"""Settings for the encoder stage (a section of `vidsight.settings.Settings`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class EncoderSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
