"""Supplementary groups of a Unix-socket peer come from the kernel (SO_PEERGROUPS), as they were at
connect time, never from /proc/PID, which may be another process by the time it is read (A9)."""

from __future__ import annotations

import os
import socket
import struct

from tuxai.api.peercred import SO_PEERGROUPS, parse_groups, peer_groups


def test_A9_peer_groups_of_a_real_socketpair_are_this_process_groups() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with left, right:
        raw = left.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, 4 * 64)
        assert len(raw) == 4 * len(os.getgroups())
        assert sorted(parse_groups(raw)) == sorted(os.getgroups())
        assert sorted(peer_groups(left, os.getuid(), os.getgid())) == sorted(os.getgroups())


def test_A9_parse_groups_reads_gid_t_and_ignores_a_torn_tail() -> None:
    assert parse_groups(b"") == ()
    assert parse_groups(struct.pack("=3I", 0, 65534, 4_000_000_000)) == (0, 65534, 4_000_000_000)
    assert parse_groups(struct.pack("=2I", 27, 1000) + b"\x01\x02") == (27, 1000)
