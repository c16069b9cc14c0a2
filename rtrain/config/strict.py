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


def carried_error(error: Any, loc: tuple[int | str, ...] | None = None) -> InitErrorDetails:
    """An error of a caught `ValidationError`, to raise again (at `loc`, default its own) with its type and
    message: pydantic's own types by name, a custom error raised deeper down as itself."""
    kind = error["type"] if error["type"] in _CORE_ERROR_TYPES else PydanticCustomError(error["type"], error["msg"])
    return InitErrorDetails(
        type=kind, loc=error["loc"] if loc is None else loc, input=error["input"], ctx=error.get("ctx") or {}
    )


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
                    unknown = PydanticCustomError(
                        "unknown_key", "unknown key; allowed here: {allowed}", {"allowed": allowed}
                    )
                    details.append(InitErrorDetails(type=unknown, loc=e["loc"], input=e["input"]))
                else:
                    details.append(carried_error(e))
            raise ValidationError.from_exception_data(err.title, details) from None
