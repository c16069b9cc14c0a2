"""`StrictModel`: the base of every config section rtrain reads from a file.

Unknown keys are errors, and each one lists the keys allowed where it was found (also inside
discriminated unions, where the caller's formatter cannot walk the schema). `rtrain.config.load`
turns the collected errors into one message with every problem at once.
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType

_CORE_ERROR_TYPES = frozenset(get_args(ErrorType))


class StrictModel(BaseModel):
    """Unknown keys are errors that list the keys allowed in this section."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="wrap")
    @classmethod
    def _explain_unknown_keys(cls, data: Any, handler: Any) -> Any:
        try:
            return handler(data)
        except ValidationError as err:
            errors = err.errors()
            if not any(e["type"] == "extra_forbidden" and len(e["loc"]) == 1 for e in errors):
                raise
            allowed = ", ".join(sorted(cls.model_fields))
            details: list[InitErrorDetails] = []
            for e in errors:
                if e["type"] == "extra_forbidden" and len(e["loc"]) == 1:
                    kind = PydanticCustomError(
                        "unknown_key", "unknown key; allowed here: {allowed}", {"allowed": allowed}
                    )
                elif e["type"] in _CORE_ERROR_TYPES:
                    kind = e["type"]
                else:  # a custom error raised deeper down: keep its type and message
                    kind = PydanticCustomError(e["type"], e["msg"])
                details.append(InitErrorDetails(type=kind, loc=e["loc"], input=e["input"], ctx=e.get("ctx") or {}))
            raise ValidationError.from_exception_data(err.title, details) from None
