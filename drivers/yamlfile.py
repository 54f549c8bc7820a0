"""Load a YAML file into a pydantic model so that every error names file, line and key path.

Shared by the agent's configuration and the device profiles: an installer who mistypes a key
must be told where, not handed a traceback. Parsing keeps ruamel's line marks; validation
errors are mapped back from pydantic's ``loc`` to the line of the offending key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class LocatedError(ValueError):
    """A validator's error about a part of the model other than where pydantic puts it.

    Cross-field checks run on the whole model; raising this points the message at the key that
    is wrong (``("registers", 3)``), relative to the model that raised it.
    """

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class YamlFileError(Exception):
    """One or more problems in one file; ``str()`` lists each on its own line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def key_path(loc: Iterable[str | int]) -> str:
    """``('devices', 0, 'tcp', 'port')`` -> ``devices[0].tcp.port``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


class Document:
    """A parsed YAML document: plain data for pydantic, plus the line of every node."""

    def __init__(self, path: Path, text: str) -> None:
        from ruamel.yaml import YAML
        from ruamel.yaml.error import MarkedYAMLError

        self.path = path
        yaml = YAML(typ="rt")
        try:
            self.tree: Any = yaml.load(text)
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            message = " ".join(x for x in (exc.context, exc.problem) if x)
            raise YamlFileError([Problem(str(path), line, "", f"YAML syntax: {message}")]) from None
        self.data = _plain(self.tree)

    def locate(self, loc: Sequence[str | int],
               missing: bool = False) -> tuple[int | None, tuple[str | int, ...]]:
        """The line and the real key path of a pydantic ``loc``.

        pydantic inserts union tags (``'modbus'``) and validator names into ``loc``; they are not
        keys of the document, so they are skipped while walking it.
        """
        node: Any = self.tree
        line: int | None = 1
        path: list[str | int] = []
        for i, part in enumerate(loc):
            lc = getattr(node, "lc", None)
            if isinstance(node, dict) and part in node:
                if lc is not None:
                    line = lc.key(part)[0] + 1
                node = node[part]
                path.append(part)
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                if lc is not None:
                    line = lc.item(part)[0] + 1
                node = node[part]
                path.append(part)
            elif missing and i == len(loc) - 1 and isinstance(node, dict):
                path.append(part)  # a missing key: reported at its parent's line
            # anything else is a union tag or validator name pydantic added: not in the document
        return line, tuple(path)


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def problems_from_validation(
    exc: ValidationError, doc: Document, prefix: Sequence[str | int] = ()
) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = (*prefix, *err["loc"])
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, LocatedError):
            loc = (*loc, *cause.loc)
        line, path = doc.locate(loc, missing=err["type"] == "missing")
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key (not allowed here)"
        elif err["type"] == "missing":
            message = "required key is missing"
        elif err["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        problems.append(Problem(str(doc.path), line, key_path(path), message))
    return sorted(problems, key=lambda p: p.line or 0)


def problems_at(
    path: Path, found: Iterable[tuple[Sequence[str | int], str]]
) -> list[Problem]:
    """Place problems found after validation (``(key path, message)``) on their lines."""
    doc = Document(path, path.read_text(encoding="utf-8"))
    problems = []
    for loc, message in found:
        line, real = doc.locate(loc)
        problems.append(Problem(str(path), line, key_path(real), message))
    return sorted(problems, key=lambda p: p.line or 0)


def load_model(path: Path, model: type[ModelT], context: dict[str, Any] | None = None) -> ModelT:
    """Read ``path`` and validate it as ``model``; :class:`YamlFileError` lists all problems."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problem = Problem(str(path), None, "", f"cannot read: {exc.strerror}")
        raise YamlFileError([problem]) from None
    except UnicodeDecodeError as exc:
        problem = Problem(str(path), None, "", f"not UTF-8 text: {exc.reason}")
        raise YamlFileError([problem]) from None
    doc = Document(path, text)
    if not isinstance(doc.data, dict):
        raise YamlFileError([Problem(str(path), 1, "", "the file must hold a YAML mapping")])
    try:
        return model.model_validate(doc.data, context=context)
    except ValidationError as exc:
        raise YamlFileError(problems_from_validation(exc, doc)) from None
