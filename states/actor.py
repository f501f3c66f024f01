"""Who acts: a personal or system account id (never shared) and the role it acts in."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from states.vocabulary import Role


class Actor(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@:_-]{0,127}$")]
    role: Role
