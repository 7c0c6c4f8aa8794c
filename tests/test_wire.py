"""MQTT 3.1.1 packets of the receiver (gateway/ingest/wire.py), byte by byte.

Expected bytes are written from the OASIS MQTT 3.1.1 standard (sections 2.2 and 3), not
produced by the code under test.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.mqtt import wire


def test_connect_packet_matches_the_standard() -> None:
    # 3.1: fixed header 0x10, remaining length, "MQTT", level 4, flags, keep-alive, payload.
    got = wire.connect_packet("gw", 30, clean_session=False, username="u", password="pw")
    assert got == (b"\x10\x15" b"\x00\x04MQTT" b"\x04" b"\xc0" b"\x00\x1e"
                   b"\x00\x02gw" b"\x00\x01u" b"\x00\x02pw")
    anonymous = wire.connect_packet("gw", 60, clean_session=True)
    assert anonymous == b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02gw"


def test_subscribe_puback_and_long_remaining_length() -> None:
    assert wire.subscribe_packet(1, ["a/b"]) == b"\x82\x08\x00\x01\x00\x03a/b\x01"
    assert wire.pubacks([1, 258]) == b"\x40\x02\x00\x01" b"\x40\x02\x01\x02"
    # 2.2.3: 321 bytes need two length bytes, 0xC1 0x02.
    topics = ["t" * 100, "u" * 100, "v" * 110]  # 2 + 103 + 103 + 113 bytes
    packet = wire.subscribe_packet(7, topics)
    assert packet[:3] == b"\x82\xc1\x02" and len(packet) == 3 + 321


def test_parse_publish_qos1_qos0_dup_and_other_packets() -> None:
    data = (b"\x32\x0c\x00\x03a/b\x00\x2a" b"hello"   # QoS 1, packet id 42
            b"\x30\x07\x00\x03a/c" b"hi"              # QoS 0: no packet id
            b"\x3a\x07\x00\x01x\x01\x00" b"!!"        # QoS 1, DUP set, packet id 256
            b"\xd0\x00"                               # PINGRESP
            b"\x90\x04\x00\x05\x01\x80")              # SUBACK: one granted, one refused
    publishes: list[wire.Publish] = []
    others: list[tuple[int, bytes]] = []
    used = wire.parse(data, 1234, publishes, others)
    assert used == len(data)
    assert publishes == [("a/b", b"hello", 42, 1, False, 1234), ("a/c", b"hi", 0, 0, False, 1234),
                         ("x", b"!!", 256, 1, True, 1234)]
    assert others == [(wire.PINGRESP, b""), (wire.SUBACK, b"\x00\x05\x01\x80")]
    assert wire.suback_failures(others[1][1]) == (5, 1)


def test_partial_packets_wait_for_more_bytes() -> None:
    frame = b"\x32\x0c\x00\x03a/b\x00\x2ahello"
    for cut in range(len(frame)):
        publishes: list[wire.Publish] = []
        assert wire.parse(frame[:cut], 0, publishes, []) == 0
        assert publishes == []


@pytest.mark.parametrize(("data", "reason"), [
    (b"\x30\x01\x00", "without a topic"),
    (b"\x32\x04\x00\x03ab", "shorter than its topic"),
    (b"\x30\x04\x00\x09ab", "shorter than its topic"),
    (b"\x30\xff\xff\xff\xff\x01", "remaining length"),
])
def test_malformed_packets_are_protocol_errors(data: bytes, reason: str) -> None:
    with pytest.raises(wire.ProtocolError, match=reason):
        wire.parse(data, 0, [], [])


def test_connack() -> None:
    assert wire.connack(b"\x01\x00") == (True, 0)
    assert wire.connack(b"\x00\x05") == (False, 5)
    with pytest.raises(wire.ProtocolError):
        wire.connack(b"\x00")


def _publish_frame(topic: bytes, payload: bytes, mid: int) -> bytes:
    """An independent encoder for the test: QoS 1 PUBLISH, 3.3."""
    body = len(topic).to_bytes(2, "big") + topic + mid.to_bytes(2, "big") + payload
    n, length = len(body), bytearray()
    while True:
        n, digit = divmod(n, 128)
        length.append(digit | (0x80 if n else 0))
        if not n:
            break
    return b"\x32" + bytes(length) + body


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=40), st.binary(max_size=400),
                          st.integers(1, 65535)), min_size=1, max_size=20),
       st.lists(st.integers(1, 64), min_size=1, max_size=50))
def test_any_split_of_the_stream_gives_the_same_messages(
        messages: list[tuple[str, bytes, int]], reads: list[int]) -> None:
    stream = b"".join(_publish_frame(t.encode(), p, m) for t, p, m in messages)
    publishes: list[wire.Publish] = []
    pending, pos, i = b"", 0, 0
    while pos < len(stream):  # feed it in reads of arbitrary sizes, as a socket would
        size = reads[i % len(reads)]
        i += 1
        data = pending + stream[pos:pos + size]
        pos += size
        pending = data[wire.parse(data, 0, publishes, []):]
    assert pending == b""
    assert [(t, p, m) for t, p, m, _q, _d, _r in publishes] == messages


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_anything_but_a_protocol_error(data: bytes) -> None:
    try:
        used = wire.parse(data, 0, [], [])
    except wire.ProtocolError:
        return
    assert 0 <= used <= len(data)


def test_packet_size_from_the_header() -> None:
    assert wire.packet_size(b"\x32") is None
    assert wire.packet_size(b"\x32\x0c\x00") == 14
    assert wire.packet_size(b"\x32\xc1") is None  # second length byte still to come
    assert wire.packet_size(b"\x32\xc1\x02") == 3 + 321


def test_subscription_chunks_and_shared_prefix() -> None:
    topics = [f"t/{i}" for i in range(5)]
    assert wire.subscription_chunks(topics, None, chunk=2) == [["t/0", "t/1"], ["t/2", "t/3"],
                                                               ["t/4"]]
    assert wire.subscription_chunks(topics[:1], "gw") == [["$share/gw/t/0"]]
