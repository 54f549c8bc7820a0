"""Findings: what the diagnosis found, the figures behind it, the likely cause and the action.

A finding is plain data. :meth:`Finding.to_json` is the whole of it, ready for the report's JSON,
a table and a message on the findings stream; its ``code`` is stable (a key of
:data:`agent.diagnosis.catalogue.CATALOGUE`), so that a recipient can act on it without reading
the text. Texts come in English and Dutch: the installer reads one, the resident the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final


class Severity(StrEnum):
    """How much a finding matters: worth knowing, costs performance, or breaks the figures."""

    INFO = "info"
    WARNING = "warning"
    FAULT = "fault"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK: Final = {Severity.INFO: 0, Severity.WARNING: 1, Severity.FAULT: 2}


@dataclass(frozen=True, slots=True)
class Text:
    en: str
    nl: str

    def to_json(self) -> dict[str, str]:
        return {"en": self.en, "nl": self.nl}


@dataclass(frozen=True, slots=True)
class Evidence:
    """One figure that triggered a finding: a stable snake_case name, its value and unit."""

    name: str
    value: float | int | str | None
    unit: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "unit": self.unit}


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: Severity
    start: float  # Unix time: the period the evidence covers, [start, end)
    end: float
    evidence: tuple[Evidence, ...]
    title: Text
    cause: Text
    action: Text

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "severity": str(self.severity), "from": iso(self.start),
                "to": iso(self.end), "title": self.title.to_json(),
                "evidence": [e.to_json() for e in self.evidence],
                "cause": self.cause.to_json(), "action": self.action.to_json()}


@dataclass(frozen=True, slots=True)
class NotChecked:
    """A rule that could not run, and why (a quantity the installation does not measure)."""

    rule: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"rule": self.rule, "reason": self.reason}


@dataclass
class Diagnosis:
    findings: list[Finding] = field(default_factory=list)
    not_checked: list[NotChecked] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"findings": [f.to_json() for f in self.findings],
                "not_checked": [n.to_json() for n in self.not_checked]}


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
