"""A cap on a request's head (request line and headers) for uvicorn's httptools protocol.

llhttp has no limit of its own and httptools keeps a header's value in memory until it ends,
so a 10 MB header was read whole; uvicorn's cap (``h11_max_incomplete_event_size``) is for h11
only. ``HeadCappedHttpTools`` counts the bytes of an unfinished head: past ``MAX_HEAD_BYTES``
it answers 431 in the server's error shape (``refusal``) and closes the connection.
"""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 2**10  # h11's default is 16 KiB, nginx's 4 × 8 KiB


class HeadCappedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with the head capped at ``MAX_HEAD_BYTES``.

    Bytes are counted per read while a head is incomplete; a read in which a request ended
    is not counted (its start may be the previous body), so the cap is exact up to one read.
    A server with another error shape overrides ``refusal``.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """A connection starts in a head."""
        super().connection_made(transport)
        self.head_bytes, self.in_head, self.ended_in_read, self.refused = 0, True, False, False

    def data_received(self, data: bytes) -> None:
        """Parse ``data``; past ``MAX_HEAD_BYTES`` of an unfinished head, answer 431 and close."""
        if self.refused:
            return
        self.ended_in_read = False
        super().data_received(data)
        if self.in_head and not self.ended_in_read and not self.transport.is_closing():
            self.head_bytes += len(data)
            if self.head_bytes > MAX_HEAD_BYTES:
                self.refuse_head()

    def on_headers_complete(self) -> None:
        """The head is whole: stop counting."""
        self.in_head, self.head_bytes = False, 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """A request ended: the next head starts."""
        self.in_head, self.head_bytes, self.ended_in_read = True, 0, True
        super().on_message_complete()

    def refusal(self, message: str) -> dict[str, str]:
        """The 431's JSON body: KServe's ``{"error": message}`` here; the daemon's API overrides it."""
        return {"error": message}

    def refuse_head(self) -> None:
        """431 with ``refusal``'s body, then close (nothing more of this connection is read).

        While an earlier request's answer is still on its way (pipelining) the connection is only
        closed: a 431 written then would be read as that request's answer.
        """
        self.refused = True
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()
            return
        message = f"the request line and headers are larger than this server's limit of {MAX_HEAD_BYTES // 2**10} KiB"
        body = json.dumps(self.refusal(message), ensure_ascii=True).encode()
        head = (
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
        )
        self.transport.write(head + body)
        self.transport.close()
