"""The read planner: a profile's registers -> the fewest Modbus read transactions.

Pure and deterministic. A *unit* is what must be read in one piece: one register, all parts of
a split counter, or all members of a group. Per table, units sorted by address are cut into
consecutive runs; a run is one read if it spans at most ``max_count`` registers, leaves no gap
wider than ``max_gap`` between neighbours and crosses no boundary. Every sub-run of a feasible
run is feasible, so the greedy cut (extend each read as far as it goes) is optimal;
:func:`minimum_reads` computes the optimum independently, for tests and the benchmark.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from drivers.profile import Limits, Register, Table


@dataclass(frozen=True, slots=True)
class Read:
    """One transaction: ``count`` registers (or bits) of ``table`` from ``address``."""

    table: Table
    address: int
    count: int
    members: tuple[int, ...]  # indices into the register list that this read serves

    @property
    def end(self) -> int:
        return self.address + self.count


@dataclass(frozen=True, slots=True)
class _Unit:
    table: Table
    start: int
    end: int
    members: tuple[int, ...]


def _units(registers: Sequence[Register]) -> list[_Unit]:
    grouped: dict[str, list[int]] = {}
    units: list[_Unit] = []
    for i, reg in enumerate(registers):
        if reg.group is not None:
            grouped.setdefault(reg.group, []).append(i)
        else:
            assert reg.table is not None
            units.append(_Unit(reg.table, reg.first, reg.end, (i,)))
    for members in grouped.values():
        regs = [registers[i] for i in members]
        table = regs[0].table
        assert table is not None
        units.append(_Unit(table, min(r.first for r in regs), max(r.end for r in regs),
                           tuple(members)))
    return sorted(units, key=lambda u: (u.table.value, u.start, u.end))


class _Rules:
    def __init__(self, table: Table, limits: Limits, max_gap: int) -> None:
        self.max_count = limits.max_bits if table.is_bits else limits.max_registers
        self.max_gap = max_gap
        self.boundaries = sorted(limits.boundaries)

    def crosses(self, start: int, end: int) -> bool:
        """Whether [start, end) holds both x-1 and x for some boundary x."""
        i = bisect_right(self.boundaries, start)
        return i < len(self.boundaries) and self.boundaries[i] < end

    def check_unit(self, unit: _Unit) -> None:
        if unit.end - unit.start > self.max_count or self.crosses(unit.start, unit.end):
            raise ValueError(f"{unit.table}:{unit.start}..{unit.end - 1} cannot be read in one "
                             f"transaction (limit {self.max_count}, boundaries {self.boundaries})")


def plan(registers: Sequence[Register], limits: Limits, max_gap: int | None = None) -> list[Read]:
    """The reads that cover every register, fewest first-fit; ``max_gap`` overrides the profile."""
    gap = limits.max_gap if max_gap is None else max_gap
    reads: list[Read] = []
    by_table: dict[Table, list[_Unit]] = {}
    for unit in _units(registers):
        by_table.setdefault(unit.table, []).append(unit)
    for table, units in by_table.items():
        rules = _Rules(table, limits, gap)
        start = end = -1
        members: list[int] = []
        for unit in units:
            rules.check_unit(unit)
            new_end = max(end, unit.end)
            fits = (members and unit.start - end <= rules.max_gap
                    and new_end - start <= rules.max_count and not rules.crosses(start, new_end))
            if fits:
                end = new_end
                members.extend(unit.members)
                continue
            if members:
                reads.append(Read(table, start, end - start, tuple(sorted(members))))
            start, end, members = unit.start, unit.end, list(unit.members)
        if members:
            reads.append(Read(table, start, end - start, tuple(sorted(members))))
    return reads


def minimum_reads(registers: Sequence[Register], limits: Limits, max_gap: int | None = None) -> int:
    """The least number of reads any valid plan needs, by dynamic programming over runs.

    Deliberately simple (cubic, checks each run from scratch): it is the reference that the
    greedy :func:`plan` is tested against.
    """
    gap = limits.max_gap if max_gap is None else max_gap
    total = 0
    by_table: dict[Table, list[_Unit]] = {}
    for unit in _units(registers):
        by_table.setdefault(unit.table, []).append(unit)
    for table, units in by_table.items():
        rules = _Rules(table, limits, gap)
        for unit in units:
            rules.check_unit(unit)

        def feasible(run: Sequence[_Unit], rules: _Rules = rules) -> bool:
            start, end = run[0].start, run[0].end
            for unit in run[1:]:
                if unit.start - end > rules.max_gap:
                    return False
                end = max(end, unit.end)
            return end - start <= rules.max_count and not rules.crosses(start, end)

        n = len(units)
        best = [0] + [n + 1] * n  # best[j]: fewest reads for the first j units
        for j in range(1, n + 1):
            for i in range(1, j + 1):
                if best[i - 1] + 1 < best[j] and feasible(units[i - 1 : j]):
                    best[j] = best[i - 1] + 1
        total += best[n]
    return total
