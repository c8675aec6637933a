"""devenv's free_port: a port nobody listens on, outside the range outgoing connections use."""

from __future__ import annotations

import socket

from devenv.lifecycle import PORT_RANGE, _ephemeral_low, free_port


def test_a_free_port_is_below_the_ephemeral_range_so_no_outgoing_connection_takes_it() -> None:
    low = _ephemeral_low()
    ports = {free_port() for _ in range(20)}
    assert all(port < low and port in PORT_RANGE for port in ports), sorted(ports)
    assert len(ports) > 1, "chosen at random, not the same port every time"


def test_a_free_port_can_be_listened_on() -> None:
    port = free_port()
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
