"""MQTT 3.1.1 on the wire, for the ingest receiver process: encode the few packets a
subscriber sends and parse what the broker sends, from large socket reads.

paho-mqtt reads and parses one packet at a time through several Python calls; with a
backlog that is most of the receiver's time (docs/performance.md). A subscriber needs only
CONNECT, SUBSCRIBE, PUBACK, PINGREQ and DISCONNECT out and CONNACK, SUBACK, PUBLISH and
PINGRESP in, so this module does just that (OASIS MQTT 3.1.1, sections 2 and 3). MQTT 5
stays with paho (receiver.py). Pure: no sockets here.
"""

from __future__ import annotations

import struct

CONNACK, PUBLISH, SUBACK, PINGRESP = 2, 3, 9, 13
PINGREQ = b"\xc0\x00"
DISCONNECT = b"\xe0\x00"
MAX_REMAINING = 268_435_455  # the largest length four bytes can say (3.1.1, 2.2.3)
CONNACK_REASONS = {
    1: "unacceptable protocol version", 2: "client identifier rejected",
    3: "server unavailable", 4: "bad user name or password", 5: "not authorised",
}
_PUBACK = struct.Struct(">BBH")
SUBSCRIBE_CHUNK = 500  # topic filters per SUBSCRIBE packet

# (topic, payload, packet id, qos, dup, received_ms): what the receiver forwards.
Publish = tuple[str, bytes, int, int, bool, int]


class ProtocolError(Exception):
    """The broker sent something that is not MQTT 3.1.1; the connection must be dropped."""


def subscription_chunks(topics: list[str], shared_group: str | None,
                        chunk: int = SUBSCRIBE_CHUNK) -> list[list[str]]:
    """The topic filters to subscribe to, `$share/<group>/`-prefixed when the load is shared
    (MQTT 5 shared subscriptions; Mosquitto accepts them with 3.1.1 too), a SUBSCRIBE's
    worth at a time."""
    prefix = f"$share/{shared_group}/" if shared_group else ""
    return [[prefix + t for t in topics[i:i + chunk]] for i in range(0, len(topics), chunk)]


def _utf8(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 65535:
        raise ValueError(f"string of {len(raw)} bytes is longer than MQTT allows (65535)")
    return len(raw).to_bytes(2, "big") + raw


def _remaining_length(n: int) -> bytes:
    if not 0 <= n <= MAX_REMAINING:
        raise ValueError(f"packet of {n} bytes is larger than MQTT allows")
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _remaining_length(len(body)) + body


def connect_packet(client_id: str, keepalive: int, *, clean_session: bool = False,
                   username: str | None = None, password: str | None = None) -> bytes:
    """CONNECT (3.1.1, 3.1): protocol level 4, no will."""
    flags = 0x02 if clean_session else 0
    payload = _utf8(client_id)
    if username is not None:
        flags |= 0x80
        payload += _utf8(username)
        if password is not None:
            flags |= 0x40
            payload += _utf8(password)
    header = _utf8("MQTT") + bytes([4, flags]) + keepalive.to_bytes(2, "big")
    return _packet(0x10, header + payload)


def subscribe_packet(packet_id: int, topics: list[str], qos: int = 1) -> bytes:
    """SUBSCRIBE (3.8) of several topic filters at one QoS."""
    if not topics:
        raise ValueError("SUBSCRIBE needs at least one topic filter")
    body = packet_id.to_bytes(2, "big") + b"".join(_utf8(t) + bytes([qos]) for t in topics)
    return _packet(0x82, body)


def pubacks(packet_ids: list[int]) -> bytes:
    """PUBACK (3.4) for each packet id, as one write."""
    pack = _PUBACK.pack
    return b"".join([pack(0x40, 2, mid) for mid in packet_ids])


def connack(body: bytes) -> tuple[bool, int]:
    """(session present, return code) of a CONNACK body."""
    if len(body) != 2:
        raise ProtocolError(f"CONNACK of {len(body)} bytes, expected 2")
    return bool(body[0] & 1), body[1]


def suback_failures(body: bytes) -> tuple[int, int]:
    """(packet id, number of filters the broker refused) of a SUBACK body."""
    if len(body) < 3:
        raise ProtocolError("SUBACK too short")
    return int.from_bytes(body[:2], "big"), sum(1 for code in body[2:] if code == 0x80)


def packet_size(data: bytes) -> int | None:
    """Total size of the packet that starts `data`, or None while its header is incomplete.

    Lets the receiver collect a large packet's bytes without parsing them again and again."""
    length = 0
    shift = 0
    for i in range(1, min(len(data), 5)):
        byte = data[i]
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            return i + 1 + length
        shift += 7
    return None


def parse(data: bytes, received_ms: int, publishes: list[Publish],
          others: list[tuple[int, bytes]]) -> int:
    """Parse whole packets from `data`; returns how many bytes were used (a partial packet
    at the end stays for the next read).

    PUBLISH packets are appended to `publishes` as tuples ready to forward, anything else to
    `others` as (packet type, body). Raises ProtocolError on bytes that cannot be MQTT.
    """
    pos = 0
    n = len(data)
    while pos + 2 <= n:
        first = data[pos]
        length = 0
        shift = 0
        i = pos + 1
        while True:
            if i >= n:
                return pos
            byte = data[i]
            i += 1
            length |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
            if shift > 21:
                raise ProtocolError("malformed remaining length")
        end = i + length
        if end > n:
            return pos
        if first >> 4 == PUBLISH:
            qos = (first >> 1) & 3
            if length < 2:
                raise ProtocolError("PUBLISH without a topic")
            start = i + 2 + ((data[i] << 8) | data[i + 1])
            if qos:
                if start + 2 > end:
                    raise ProtocolError("PUBLISH shorter than its topic and packet id")
                mid = (data[start] << 8) | data[start + 1]
                body = start + 2
            else:
                if start > end:
                    raise ProtocolError("PUBLISH shorter than its topic")
                mid = 0
                body = start
            publishes.append((data[i + 2:start].decode("utf-8", "surrogateescape"),
                              data[body:end], mid, qos, bool(first & 0x08), received_ms))
        else:
            others.append((first >> 4, data[i:end]))
        pos = end
    return pos
