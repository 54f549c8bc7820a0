"""The read planner: covers everything, respects every limit, needs no more reads than optimal."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.planner import Read, minimum_reads, plan
from drivers.profile import Limits, Register, Table

QUANTITIES = ["hp.supply_temp", "hp.return_temp", "hp.outdoor_temp", "hp.dhw_temp", "hp.flow",
              "hp.compressor_freq", "hp.heat_power", "hp.electric_power", "hp.heat_energy",
              "hp.electric_energy", "room.temp", "room.setpoint", "hp.source_in_temp",
              "hp.source_out_temp", "hp.reported_cop", "boiler.supply_temp"]


def reg(i: int, address: int, table: str = "holding", size: int = 1,
        group: str | None = None) -> Register:
    kind = {1: "u16", 2: "u32", 4: "u64"}[size]
    data: dict[str, Any] = {"quantity": QUANTITIES[i], "name": f"r{i}", "address": address,
                            "table": table, "type": kind, "group": group}
    if size > 1:
        data["word_order"] = "big"
    return Register.model_validate(data)


def check(reads: list[Read], regs: list[Register], limits: Limits) -> None:
    served = sorted(i for r in reads for i in r.members)
    assert served == list(range(len(regs))), "every register is read exactly once"
    for r in reads:
        limit = limits.max_bits if r.table.is_bits else limits.max_registers
        assert 1 <= r.count <= limit
        for i in r.members:
            assert regs[i].table is r.table
            assert r.address <= regs[i].first and regs[i].end <= r.end
        assert not any(r.address < b < r.end for b in limits.boundaries)
    groups: dict[str, set[int]] = {}
    for index, register in enumerate(regs):
        if register.group is not None:
            groups.setdefault(register.group, set()).add(index)
    for members in groups.values():
        assert any(members <= set(r.members) for r in reads), "a group is read in one piece"


CASES = [
    # (addresses, max_gap, expected reads)
    ([0, 1, 2, 3], 0, [(0, 4)]),
    ([0, 2, 4], 0, [(0, 1), (2, 1), (4, 1)]),
    ([0, 2, 4], 1, [(0, 5)]),
    ([0, 10, 200], 10, [(0, 11), (200, 1)]),
    ([0, 124, 125], 124, [(0, 125), (125, 1)]),  # 125 registers at most
]


@pytest.mark.parametrize(("addresses", "gap", "expected"), CASES)
def test_plan_table(addresses: list[int], gap: int, expected: list[tuple[int, int]]) -> None:
    regs = [reg(i, a) for i, a in enumerate(addresses)]
    reads = plan(regs, Limits(max_gap=gap))
    assert [(r.address, r.count) for r in reads] == expected


def test_tables_are_planned_separately() -> None:
    regs = [reg(0, 5, "input"), reg(1, 5, "holding"), reg(2, 6, "input")]
    reads = plan(regs, Limits())
    assert {(r.table, r.address, r.count) for r in reads} == {(Table.INPUT, 5, 2),
                                                             (Table.HOLDING, 5, 1)}


def test_boundaries_split_reads() -> None:
    regs = [reg(0, 98), reg(1, 99), reg(2, 100), reg(3, 101)]
    reads = plan(regs, Limits(boundaries=(100,)))
    assert [(r.address, r.count) for r in reads] == [(98, 2), (100, 2)]


def test_a_group_that_cannot_fit_is_refused() -> None:
    regs = [reg(0, 0, group="g"), reg(1, 200, group="g")]
    with pytest.raises(ValueError, match="cannot be read in one transaction"):
        plan(regs, Limits())


@st.composite
def register_sets(draw: st.DrawFn) -> tuple[list[Register], Limits, int]:
    n = draw(st.integers(1, len(QUANTITIES)))
    taken: set[tuple[str, int]] = set()
    regs: list[Register] = []
    for _ in range(n):
        table = draw(st.sampled_from(["holding", "input"]))
        size = draw(st.sampled_from([1, 1, 2, 4]))
        address = draw(st.integers(0, 400))
        span = {(table, a) for a in range(address, address + size)}
        if span & taken:
            continue
        taken |= span
        regs.append(reg(len(regs), address, table, size))
    if len(regs) >= 2 and draw(st.booleans()):  # put two registers of one table in a group
        same = [r for r in regs if r.table is regs[0].table]
        if len(same) >= 2 and abs(same[0].first - same[1].first) < 100:
            regs = [r.model_copy(update={"group": "g"}) if r in same[:2] else r for r in regs]
    limits = Limits(max_registers=draw(st.integers(4, 125)), max_gap=draw(st.integers(0, 30)),
                    boundaries=tuple(sorted(draw(st.sets(st.integers(1, 400), max_size=3)))))
    return regs, limits, draw(st.integers(0, 30))


@settings(max_examples=300, deadline=None)
@given(register_sets())
def test_plan_is_valid_and_minimal(case: tuple[list[Register], Limits, int]) -> None:
    regs, limits, gap = case
    try:
        reads = plan(regs, limits, max_gap=gap)
    except ValueError:  # a unit larger than a read or across a boundary: must be genuinely so
        with pytest.raises(ValueError, match="cannot be read"):
            minimum_reads(regs, limits, max_gap=gap)
        return
    check(reads, regs, limits.model_copy(update={"max_gap": gap}))
    assert len(reads) == minimum_reads(regs, limits, max_gap=gap)
