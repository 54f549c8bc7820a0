"""OpenTherm frames as the OTGW prints them: decoding, the data-id table, facts and the timeline.

Golden cases use real OTGW line formats: PROTOCOLS.md's examples and a hand-written capture
(``tests/cases/otgw/capture.txt``) whose every expected value is written down in
``capture.expected.json``. Properties: no line crashes the decoder, and no frame whose parity
fails ever yields a value.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.opentherm import DATA_IDS, QUANTITY_SIDES, TIMELINE, DataId, Frame, MsgType, parity_ok
from drivers.otgw_monitor import LineBuffer, LineKind, OpenThermMonitor, classify
from drivers.vocabulary import VOCABULARY
from tests.support import CASES

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def fed(*lines: str) -> OpenThermMonitor:
    monitor = OpenThermMonitor()
    for i, line in enumerate(lines):
        monitor.feed(line, T0 + i)
    return monitor


# -- PROTOCOLS.md's examples ----------------------------------------------------------------------


@pytest.mark.parametrize(("line", "source", "msg_type", "data_id", "hb", "lb", "parity"), [
    ("T80000200", "T", MsgType.READ_DATA, 0, 0x02, 0x00, True),
    ("B40000200", "B", MsgType.READ_ACK, 0, 0x02, 0x00, True),
    ("BC0193080", "B", MsgType.READ_ACK, 25, 0x30, 0x80, True),
    # As printed in PROTOCOLS.md (checked there through pyotgw, which never checks parity):
    # both have an odd number of one bits, so a real gateway link would never carry them.
    ("T80000300", "T", MsgType.READ_DATA, 0, 0x03, 0x00, False),
    ("B4000030A", "B", MsgType.READ_ACK, 0, 0x03, 0x0A, False),
    # The same frames with the parity bit a real thermostat and boiler would send.
    ("T00000300", "T", MsgType.READ_DATA, 0, 0x03, 0x00, True),
    ("BC000030A", "B", MsgType.READ_ACK, 0, 0x03, 0x0A, True),
])
def test_frame_fields(line: str, source: str, msg_type: MsgType, data_id: int, hb: int, lb: int,
                      parity: bool) -> None:
    parsed = classify(line)
    assert parsed.kind is LineKind.FRAME
    frame = parsed.frame
    assert frame is not None
    assert (frame.source, frame.msg_type, frame.data_id) == (source, msg_type, data_id)
    assert (frame.hb, frame.lb, frame.parity_ok) == (hb, lb, parity)
    assert frame.text == line


def test_status_request_gives_the_master_flags() -> None:
    assert fed("T80000200").values == {"boiler.ch_enabled": False, "boiler.dhw_enabled": True}
    assert fed("T00000300").values == {"boiler.ch_enabled": True, "boiler.dhw_enabled": True}


def test_status_answer_gives_the_slave_flags() -> None:
    idle = {"boiler.fault": False, "boiler.ch_active": False, "boiler.dhw_active": False,
            "boiler.flame": False}
    assert fed("B40000200").values == idle
    burning = {**idle, "boiler.ch_active": True, "boiler.flame": True}
    assert fed("BC000030A").values == burning


def test_boiler_water_temperature_is_f88() -> None:
    assert fed("BC0193080").values == {"boiler.supply_temp": 48.5}


def test_odd_parity_examples_yield_nothing() -> None:
    monitor = fed("T80000300", "B4000030A")
    assert monitor.values == {}
    assert monitor.counts.parity_errors == 2
    assert monitor.take_events() == []


@pytest.mark.parametrize(("data_id", "raw", "value"), [
    (25, 0x3080, 48.5),  # f8.8: 0x3080 / 256
    (27, 0xF980, -6.5),  # f8.8, negative: two's complement
    (17, 0x2580, 37.5),
    (116, 0x3039, 12345),  # u16
    (33, 0xFF83, -125),  # s16 (pyotgw's exhaust temperature example)
    (48, 0x3C28, (60, 40)),  # s8/s8 bounds
    (15, 0x1814, (24, 20)),  # u8/u8: 24 kW, 20 % minimum modulation
])
def test_type_codes(data_id: int, raw: int, value: object) -> None:
    assert DATA_IDS[data_id].value(raw) == value


def test_flag_bytes_decode_by_name() -> None:
    status = DATA_IDS[0]
    assert status.flags(0x030A, "hb") == {"ch_enable": True, "dhw_enable": True,
                                          "cooling_enable": False, "otc_active": False,
                                          "ch2_enable": False}
    assert {k for k, v in status.flags(0x030A, "lb").items() if v} == {"ch_active", "flame"}
    assert status.show(0x030A) == "ch_enable dhw_enable / ch_active flame"
    assert status.as_json(0x0300) == {
        "hb": {"ch_enable": True, "dhw_enable": True, "cooling_enable": False,
               "otc_active": False, "ch2_enable": False},
        "lb": {"fault": False, "ch_active": False, "dhw_active": False, "flame": False,
               "cooling_active": False, "ch2_active": False, "diagnostic": False}}


# -- the table ------------------------------------------------------------------------------------


def test_table_maps_the_briefed_ids_to_vocabulary_quantities() -> None:
    expected = {1: "boiler.control_setpoint", 16: "room.setpoint", 17: "boiler.modulation",
                18: "boiler.pressure", 19: "boiler.dhw_flow", 24: "room.temp",
                25: "boiler.supply_temp", 26: "boiler.dhw_temp", 27: "boiler.outdoor_temp",
                28: "boiler.return_temp", 116: "boiler.burner_starts",
                119: "boiler.dhw_burner_starts", 120: "boiler.burner_hours",
                123: "boiler.dhw_burner_hours"}
    assert {i: d.quantity for i, d in DATA_IDS.items() if d.quantity} == expected
    assert dict(DATA_IDS[0].bits) == {
        "ch_enable": "boiler.ch_enabled", "dhw_enable": "boiler.dhw_enabled",
        "fault": "boiler.fault", "ch_active": "boiler.ch_active",
        "dhw_active": "boiler.dhw_active", "flame": "boiler.flame"}


def test_every_quantity_is_in_the_vocabulary_with_a_matching_kind() -> None:
    for quantity in QUANTITY_SIDES:
        assert quantity in VOCABULARY
    for d in DATA_IDS.values():
        if d.quantity is not None:
            assert (VOCABULARY[d.quantity].kind == "counter") == (d.type == "u16")
        for _, quantity in d.bits:
            assert VOCABULARY[quantity].is_boolean
    assert set(TIMELINE) <= set(QUANTITY_SIDES)


def test_master_values_come_only_from_master_lines() -> None:
    # id 1 control setpoint: the thermostat's WRITE-DATA counts, an ACK of another value not.
    assert fed("T90013700").values == {"boiler.control_setpoint": 55.0}
    assert fed("B50013700").values == {}
    # Slave values: a READ-DATA asks, only the READ-ACK answers.
    assert fed("T80190000").values == {}


def test_outside_temperature_is_read_or_written() -> None:
    # id 27 is R/W: the boiler's READ-ACK, or a thermostat writing its own sensor's value.
    assert fed("B401BF980").values == {"boiler.outdoor_temp": -6.5}
    written = Frame.build("T", MsgType.WRITE_DATA, 27, 0x0340)  # 3.25 °C
    assert fed(written.text).values == {"boiler.outdoor_temp": 3.25}


def test_a_table_row_refuses_unknown_types_and_misplaced_flags() -> None:
    with pytest.raises(ValueError, match="unknown type code"):
        DataId(200, "x", "f16", "R")
    with pytest.raises(ValueError, match="status ids only"):
        DataId(201, "x", "flag8/u8", "R", hb=("a",), bits=(("a", "boiler.fault"),))


# -- a captured sequence --------------------------------------------------------------------------


def test_captured_sequence() -> None:
    lines = (CASES / "otgw" / "capture.txt").read_bytes()
    expected = json.loads((CASES / "otgw" / "capture.expected.json").read_text())
    buffer = LineBuffer()
    monitor = OpenThermMonitor()
    # Deliver the capture in uneven chunks, as a serial port would; line n arrives at T0 + n/2.
    number = 1  # the first line is the tail of one sent before we connected
    for start in range(0, len(lines), 7):
        for text in buffer.feed(lines[start:start + 7]):
            number += 1
            monitor.feed(text, T0 + number / 2)
    assert number == 44
    assert monitor.values == expected["values"]
    for quantity in expected["absent"]:
        assert quantity not in monitor.values
    assert monitor.counts.as_dict() == expected["counts"]
    assert monitor.unsupported == {33}
    timeline = [(e.at, e.quantity, e.value) for e in monitor.take_events()]
    assert timeline == [(datetime.fromtimestamp(T0 + n / 2, UTC), q, v)
                        for n, q, v in expected["timeline"]]
    assert monitor.take_events() == []


# -- lines ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "kind"), [
    ("T80000200", LineKind.FRAME),
    ("E40000300", LineKind.BAD_FRAME),
    ("Error 01", LineKind.BUS_ERROR),
    ("PR: A=OpenTherm Gateway 5.1", LineKind.REPLY),
    ("AA: 28", LineKind.REPLY),
    ("NG", LineKind.REPLY),
    ("T8000020", LineKind.GARBAGE),
    ("X80000200", LineKind.GARBAGE),
    ("", LineKind.GARBAGE),
])
def test_line_kinds(text: str, kind: LineKind) -> None:
    assert classify(text).kind is kind


def test_line_buffer_drops_a_partial_first_line_only() -> None:
    buffer = LineBuffer()
    assert buffer.feed(b"0200\r\nT80000200\r\n") == ["T80000200"]
    buffer.restart()
    assert buffer.feed(b"B40000200\r\n") == ["B40000200"]  # a complete first line is kept


def test_line_buffer_is_bounded() -> None:
    buffer = LineBuffer()
    buffer.feed(b"\n")
    lines = buffer.feed(b"x" * 1000)
    assert len(lines) == 1
    assert buffer.feed(b"\nT80000200\n") == ["T80000200"]


# -- properties -----------------------------------------------------------------------------------

frames = st.builds(
    Frame.build,
    source=st.sampled_from("TBRA"),
    msg_type=st.sampled_from(MsgType),
    data_id=st.sampled_from(sorted(DATA_IDS)),
    value=st.integers(0, 0xFFFF),
)


@given(frames)
def test_built_frames_have_even_parity_and_round_trip(frame: Frame) -> None:
    assert parity_ok(frame.raw)
    parsed = classify(frame.text).frame
    assert parsed == frame


@given(frames, st.integers(0, 31))
def test_a_flipped_bit_never_yields_a_value(frame: Frame, bit: int) -> None:
    monitor = OpenThermMonitor()
    flipped = Frame(frame.source, frame.raw ^ (1 << bit))
    monitor.feed(flipped.text, T0)
    assert monitor.values == {}
    assert monitor.take_events() == []
    assert monitor.counts.parity_errors == 1


@given(st.lists(st.text(max_size=40) | frames.map(lambda f: f.text), max_size=30))
@settings(max_examples=200)
def test_any_lines_never_crash_and_only_good_frames_change_values(lines: list[str]) -> None:
    monitor = OpenThermMonitor()
    for i, text in enumerate(lines):
        before = dict(monitor.values)
        line = monitor.feed(text, T0 + i)
        good = line.frame is not None and line.frame.parity_ok
        if not good:
            assert monitor.values == before


lines_of_bytes = st.lists(
    st.tuples(st.binary(max_size=60).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
              st.sampled_from([b"\r\n", b"\n", b"\r"])),
    max_size=12,
).map(lambda parts: b"".join(text + end for text, end in parts))


@given(lines_of_bytes, st.lists(st.integers(1, 50), max_size=20))
def test_line_buffer_chunking_does_not_matter(data: bytes, cuts: list[int]) -> None:
    whole = LineBuffer().feed(data)
    buffer = LineBuffer()
    chunked: list[str] = []
    position = 0
    for size in cuts:
        chunked += buffer.feed(data[position:position + size])
        position += size
    chunked += buffer.feed(data[position:])
    assert chunked == whole


@given(st.lists(st.integers(0, 0x0F), min_size=1, max_size=40))
def test_timeline_holds_exactly_the_changes(slave_flags: list[int]) -> None:
    monitor = OpenThermMonitor()
    expected = []
    previous: dict[str, bool] = {}
    for i, lb in enumerate(slave_flags):
        monitor.feed(Frame.build("B", MsgType.READ_ACK, 0, 0x0300 | lb).text, T0 + i)
        state = {"boiler.ch_active": bool(lb & 2), "boiler.dhw_active": bool(lb & 4),
                 "boiler.flame": bool(lb & 8)}
        at = datetime.fromtimestamp(T0 + i, UTC)
        expected += [(at, q, v) for q, v in state.items() if previous.get(q) != v]
        previous = state
    assert [(e.at, e.quantity, e.value) for e in monitor.take_events()] == expected


def test_forget_makes_the_next_state_news_again() -> None:
    monitor = fed("BC000030A")
    monitor.take_events()
    monitor.forget()
    assert monitor.values == {}
    monitor.feed("BC000030A", T0 + 10)
    assert {e.quantity for e in monitor.take_events()} == {
        "boiler.ch_active", "boiler.dhw_active", "boiler.flame"}


def test_event_backlog_is_bounded_and_counted() -> None:
    monitor = OpenThermMonitor(max_events=4)
    for i in range(6):
        monitor.feed(Frame.build("B", MsgType.READ_ACK, 17, i * 256).text, T0 + i)
    assert [e.value for e in monitor.take_events()] == [2.0, 3.0, 4.0, 5.0]
    assert monitor.dropped_events == 2
