"""An interactive session's wire: the frames ``tuxai run``/``attach`` and the shim exchange, and the detach keys.

The shim serves a session on a Unix socket in the job's directory (``SOCKET``, 0600, the job's
user's; see ``executor.session``). Both ends speak frames: one kind byte, a 4-byte big-endian
length, the payload.

    client → shim   HELLO {"rows", "cols", "from_start"}   INPUT bytes   RESIZE {"rows", "cols"}
                    EOF (stdin ended)        SIGNAL {"signal"}   DETACH
    shim → client   OUTPUT bytes   EXIT {"exit_code", "signal"}   REFUSED text   TAKEN text
                    SYNC {"start", "end"}

After HELLO the shim replays the last output it keeps (a re-attach shows where the shell was);
with ``from_start`` (``tuxai run``'s first attach) it sends SYNC instead: the attempt's output
so far is the job's log from byte ``start`` to ``end``, read by the client through the
daemon's API, and OUTPUT goes on from there — so ``tuxai run`` shows every byte, in order.

Pure: no I/O here.
"""

from __future__ import annotations

import json
import struct
from enum import IntEnum
from typing import Any

SOCKET = "session.sock"  # in the job's directory, beside output.log
PTY, PIPE = "pty", "pipe"  # JobSpec.session: a pseudo-terminal, or stdin/stdout relayed plainly
MODES = (PTY, PIPE)
DETACH_KEYS = b"\x10\x11"  # Ctrl-p Ctrl-q, as docker attach: Ctrl-b is tmux's, Enter ~ . is ssh's
DETACH_TEXT = "Ctrl-p Ctrl-q"
MAX_FRAME = 1 << 20
_HEAD = struct.Struct(">BI")


class Kind(IntEnum):
    """What a frame carries."""

    HELLO = 1
    INPUT = 2
    RESIZE = 3
    EOF = 4
    SIGNAL = 5
    DETACH = 6
    OUTPUT = 10
    EXIT = 11
    REFUSED = 12
    TAKEN = 13
    SYNC = 14


def frame(kind: Kind, payload: bytes = b"") -> bytes:
    """One frame: ``frame(Kind.INPUT, b"ls\\r")`` → ``b"\\x02\\x00\\x00\\x00\\x03ls\\r"``."""
    return _HEAD.pack(kind, len(payload)) + payload


def json_frame(kind: Kind, data: dict[str, Any]) -> bytes:
    """A frame whose payload is a JSON object."""
    return frame(kind, json.dumps(data).encode())


def read_json(payload: bytes) -> dict[str, Any]:
    """A JSON payload → a mapping (an empty one when it is not a JSON object)."""
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):  # [[[[… nested past the interpreter's depth: no mapping either (R5)
        return {}
    return data if isinstance(data, dict) else {}


def window(data: dict[str, Any]) -> tuple[int, int] | None:
    """``{"rows": 40, "cols": 120}`` → ``(40, 120)``; None unless both are sizes a terminal can have."""
    rows, cols = data.get("rows"), data.get("cols")
    if isinstance(rows, int) and isinstance(cols, int) and 0 < rows < 65536 and 0 < cols < 65536:
        return rows, cols
    return None


class FrameReader:
    """Frames out of a byte stream read in pieces.

    >>> reader = FrameReader()
    >>> reader.feed(frame(Kind.EOF) + frame(Kind.INPUT, b"x")[:3])
    [(<Kind.EOF: 4>, b'')]
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.broken = False  # an unknown kind or an oversized frame: the peer is not a tuxai session

    def feed(self, data: bytes) -> list[tuple[Kind, bytes]]:
        """Add ``data``; the frames now complete."""
        self._buffer += data
        frames: list[tuple[Kind, bytes]] = []
        while not self.broken and len(self._buffer) >= _HEAD.size:
            code, length = _HEAD.unpack_from(self._buffer)
            if length > MAX_FRAME or code not in Kind._value2member_map_:
                self.broken = True
                break
            if len(self._buffer) < _HEAD.size + length:
                break
            frames.append((Kind(code), bytes(self._buffer[_HEAD.size : _HEAD.size + length])))
            del self._buffer[: _HEAD.size + length]
        return frames


class DetachScanner:
    """Finds the detach keys in typed input; a lone first key is held until the next one says which it was.

    >>> scanner = DetachScanner()
    >>> scanner.feed(b"ls\\x10"), scanner.feed(b"\\x11")
    ((b'ls', False), (b'', True))
    >>> scanner.feed(b"\\x10x")
    (b'\\x10x', False)
    """

    def __init__(self, keys: bytes = DETACH_KEYS) -> None:
        self.keys = keys
        self._held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """Typed bytes → (what to send on, whether the keys were typed: then nothing after them is sent)."""
        out = bytearray()
        for byte in data:
            key = bytes([byte])
            if not self.keys.startswith(self._held + key):
                out += self._held  # not the keys after all: what was held is input
                self._held = b""
            if self.keys.startswith(self._held + key):
                self._held += key
                if self._held == self.keys:
                    self._held = b""
                    return bytes(out), True
            else:
                out += key
        return bytes(out), False
