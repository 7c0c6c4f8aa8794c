"""Shared pydantic base: unknown keys are errors, so typos fail at start-up."""

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Base of every configuration and registry model."""

    model_config = ConfigDict(extra="forbid", frozen=True)
