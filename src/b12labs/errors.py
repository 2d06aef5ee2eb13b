"""The b12labs exception tree.

Every error the library raises on purpose derives from :class:`B12LabsError`; errors about a
bad value or unit are also :class:`ValueError`, so callers that already catch ``ValueError``
keep working::

    B12LabsError
    ├── InputError (ValueError)              a value the library cannot use
    │   ├── UnitError                        unknown unit, wrong dimension, unit missing
    │   ├── InvalidValueError                non-numeric, NaN/inf, negative, bad comparator
    │   ├── UnknownAnalyteError              a panel key that is not an analyte of docs/clinical-logic.md §2
    │   └── VocabularyError                  an unknown symptom or condition term
    ├── ProfileError (ValueError)            a threshold profile file that fails its schema
    ├── InputFormatError (ValueError)        a batch file or frame that cannot be scored
    └── MissingExtraError (ImportError)      an optional feature whose extra is not installed

Errors carry structured attributes (``analyte``, ``reported``, ``reason``, ``accepted``) and a
message that says what would be accepted. They are raised to the caller; the library never
writes patient values to a log.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "B12LabsError",
    "InputError",
    "InputFormatError",
    "InvalidValueError",
    "MissingExtraError",
    "ProfileError",
    "UnitError",
    "UnknownAnalyteError",
    "VocabularyError",
]


class B12LabsError(Exception):
    """Base class of every error b12labs raises on purpose."""


class InputError(B12LabsError, ValueError):
    """A measurement or context value that cannot be used.

    Attributes: ``analyte`` (analyte key or context field), ``reported`` (the text as given),
    ``reason`` (why it was refused) and ``accepted`` (what would be accepted instead).
    """

    def __init__(
        self,
        reason: str,
        *,
        analyte: str | None = None,
        reported: object = None,
        accepted: str | None = None,
    ) -> None:
        self.analyte = analyte
        self.reported = reported
        self.reason = reason
        self.accepted = accepted
        parts = []
        if analyte is not None:
            parts.append(f"{analyte}: ")
        if reported is not None:
            parts.append(f"{reported!r}: ")
        parts.append(reason)
        if accepted:
            parts.append(f" (accepted: {accepted})")
        super().__init__("".join(parts))


class UnitError(InputError):
    """A unit that is missing, unknown, or of the wrong dimension for the analyte."""


class InvalidValueError(InputError):
    """A value that is not a usable number: text, NaN/inf, negative, or a bad comparator."""


class UnknownAnalyteError(InputError):
    """A panel key that is not one of the analytes of docs/clinical-logic.md §2."""


class VocabularyError(InputError):
    """A symptom or condition term outside the closed vocabulary of docs/clinical-logic.md §3."""

    def __init__(self, field: str, term: str, vocabulary: Iterable[str]) -> None:
        self.vocabulary = sorted(vocabulary)
        super().__init__(
            f"unknown {field[:-1] if field.endswith('s') else field} term",
            analyte=field,
            reported=term,
            accepted=", ".join(self.vocabulary),
        )


class ProfileError(B12LabsError, ValueError):
    """A threshold profile that cannot be loaded: names the file and the key."""

    def __init__(self, reason: str, *, file: str | None = None, key: str | None = None) -> None:
        self.file = file
        self.key = key
        self.reason = reason
        where = " ".join(p for p in (file, f"[{key}]" if key else None) if p)
        super().__init__(f"{where}: {reason}" if where else reason)


class InputFormatError(B12LabsError, ValueError):
    """A batch input (file or frame) that cannot be scored as given."""


class MissingExtraError(B12LabsError, ImportError):
    """An optional feature used without its extra installed; the message names the extra."""

    def __init__(self, feature: str, extra: str, missing: str) -> None:
        self.feature = feature
        self.extra = extra
        super().__init__(
            f"{feature} needs the optional dependency {missing!r}: pip install 'b12labs[{extra}]'"
        )
