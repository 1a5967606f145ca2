"""Settings for the api stage (a section of `vidsight.settings.Settings`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
