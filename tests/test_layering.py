"""The architecture holds: each wing of ``agent/`` imports only the wings below it.

The order is DESIGN.md's, bottom first. ``agent/sample.py`` is the one type every wing shares and
sits below them all; ``drivers/`` and ``hil/`` use nothing of ``agent/``; of ``agent/`` only the
commands reach the bench (``demo``, ``hil season``). Imports are read with :mod:`ast`, so those
inside functions (the CLI imports lazily) count as much as those at the top.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO

WINGS = ("trust", "figures", "delivery", "web", "diagnosis", "consent", "service", "commands")
SHARED = ("agent.sample",)  # below every wing
ENTRY = ("agent.__main__",)  # ``python -m agent``: the CLI itself


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(root: Path, path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in ``path``, relative ones resolved."""
    package = module_name(root, path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            yield node.lineno, module
            for alias in node.names:  # ``from agent import service`` imports agent.service
                yield node.lineno, f"{module}.{alias.name}"


def shared(module: str) -> bool:
    return any(module == s or module.startswith(f"{s}.") for s in SHARED)


def wing_of(module: str) -> str | None:
    """The wing a module of ``agent`` belongs to (None: ``agent`` itself or a shared module)."""
    parts = module.split(".")
    if parts[0] != "agent" or len(parts) < 2 or shared(module) or module in ENTRY:
        return None
    return parts[1]


def violations(root: Path) -> list[str]:
    """Every import in ``root``'s agent/, drivers/ and hil/ that breaks the layering."""
    found: list[str] = []
    for top in ("agent", "drivers", "hil"):
        for path in sorted((root / top).rglob("*.py")):
            name = module_name(root, path)
            where = f"{path.relative_to(root)}"
            if top == "agent" and path.parent != root / "agent" and path.parent.name not in WINGS:
                found.append(f"{where}: wing {path.parent.name!r} has no place in WINGS")
            for line, target in imports(root, path):
                if target.split(".")[0] not in ("agent", "hil"):
                    continue
                problem = _problem(name, target)
                if problem:
                    found.append(f"{where}:{line}: imports {target}: {problem}")
    return found


def _problem(name: str, target: str) -> str | None:
    top = name.split(".", maxsplit=1)[0]
    if top in ("drivers", "hil"):
        if target.startswith("agent"):
            return f"{top}/ uses nothing of agent/"
        return "drivers/ never imports the bench" if top == "drivers" else None
    if name in ENTRY:
        return None
    own = wing_of(name)
    if target.split(".", maxsplit=1)[0] == "hil":
        return None if own == "commands" else "only agent/commands may use the bench"
    their = wing_of(target)
    if their is None:
        return None
    if their not in WINGS:
        return f"wing {their!r} has no place in WINGS"
    if own is None:
        return f"{name} sits below every wing"
    if WINGS.index(their) > WINGS.index(own):
        return f"wing {own!r} may import only the wings below it, not {their!r}"
    return None


def test_the_project_keeps_its_layers() -> None:
    assert violations(REPO) == []


def test_every_existing_wing_is_placed() -> None:
    present = {p.name for p in (REPO / "agent").iterdir() if (p / "__init__.py").is_file()}
    assert present <= set(WINGS)
    assert {"commands", "service", "delivery", "figures", "trust"} <= present


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for top in ("agent", "drivers", "hil"):
        (tmp_path / top).mkdir(exist_ok=True)
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.mark.parametrize(("files", "message"), [
    ({"agent/trust/jws.py": "from agent.delivery.store import Store\n"},
     "agent/trust/jws.py:1: imports agent.delivery.store: wing 'trust' may import only"),
    ({"agent/figures/ledger.py": "def f() -> None:\n    from agent.service import config\n"},
     "agent/figures/ledger.py:2: imports agent.service.config: wing 'figures'"),
    ({"agent/delivery/outbox.py": "from ..commands import cli\n"},
     "agent/delivery/outbox.py:1: imports agent.commands: wing 'delivery'"),
    ({"agent/sample.py": "import agent.trust.jws\n"},
     "agent/sample.py:1: imports agent.trust.jws: agent.sample sits below every wing"),
    ({"drivers/p1.py": "from agent.sample import Sample\n"},
     "drivers/p1.py:1: imports agent.sample: drivers/ uses nothing of agent/"),
    ({"drivers/p1.py": "import hil.p1_meter\n"},
     "drivers/p1.py:1: imports hil.p1_meter: drivers/ never imports the bench"),
    ({"hil/season.py": "from agent import sample\n"},
     "hil/season.py:1: imports agent: hil/ uses nothing of agent/"),
    ({"agent/service/daemon.py": "from hil.broker import local_broker\n"},
     "agent/service/daemon.py:1: imports hil.broker: only agent/commands may use the bench"),
    ({"agent/extras/thing.py": "x = 1\n"},
     "agent/extras/thing.py: wing 'extras' has no place in WINGS"),
])
def test_a_planted_violation_is_found(tmp_path: Path, files: dict[str, str], message: str) -> None:
    found = violations(_tree(tmp_path, files))
    assert any(v.startswith(message) for v in found), found


def test_downward_and_shared_imports_pass(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "agent/commands/cli.py": "from agent.service import daemon\nimport hil.season\n",
        "agent/service/daemon.py": "from agent.delivery.store import Store\nfrom . import logs\n",
        "agent/delivery/ingest.py": "from agent.trust import jws\nfrom agent.sample import S\n",
        "agent/figures/ledger.py": "from drivers.reading import Value\n",
        "agent/sample.py": "from drivers.recording import Record\n",
        "hil/season.py": "from drivers.recording import Record\n",
    })
    assert violations(root) == []
