"""Domain errors: what services raise when a request cannot be carried out.

They know nothing of HTTP. The API's exception handler answers them with 409 / 422 / 404
(core/api/exceptions.py); the admin shows their message; management commands print it.
"""

from dataclasses import dataclass


class DomainError(Exception):
    default_message = "The request cannot be carried out."

    def __init__(self, message: str = ""):
        self.message = message or self.default_message
        super().__init__(self.message)


class Conflict(DomainError):
    """The request conflicts with the current state (a duplicate name, a run that already finished)."""

    default_message = "The request conflicts with the current state of the resource."


class NotFound(DomainError):
    default_message = "Not found."


@dataclass(frozen=True)
class FieldError:
    field: str  # a dotted path into the input (`input_data.topic`, `steps.s1.next_step`); "" = the input as a whole
    message: str
    code: str = "invalid"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidInput(DomainError):
    """The input breaks one or more rules; `errors` lists every problem with its field path."""

    default_message = "Request validation failed"

    def __init__(self, errors: list[FieldError], message: str = ""):
        self.errors = list(errors)
        super().__init__(message or "; ".join(str(error) for error in self.errors) or self.default_message)

    @classmethod
    def one(cls, field: str, message: str, code: str = "invalid") -> "InvalidInput":
        return cls([FieldError(field, message, code)])
