"""Issue 18 gap 4: the dashboard's HTTP floor was 44 ms an answer on a kept-alive connection: the daemon's
(and the model server's) listener was made with protocol 0, so asyncio never set TCP_NODELAY on its
connections, and an answer's body, written after its head, waited for the client's delayed ACK (40 ms)."""

from __future__ import annotations

import asyncio
import socket
import time

from tuxai.edge.listen import listen_tcp


async def _serve_twice_written_answers(requests: int) -> tuple[int, list[float]]:
    """A server on ``listen_tcp`` answering each request in two writes (head, then body), as uvicorn does;
    TCP_NODELAY as its connection has it, and each keep-alive exchange's seconds."""
    seen: list[int] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
                await writer.drain()
                writer.write(b"hello")
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass  # the client closed: the test is over
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(answer, sock=listen_tcp("127.0.0.1", 0, "--tcp"))
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    seconds = []
    for _ in range(requests):
        started = time.perf_counter()
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(5)
        seconds.append(time.perf_counter() - started)
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    return seen[0], seconds


def test_E18_4_the_listeners_connections_send_without_waiting_for_an_ack() -> None:
    nodelay, seconds = asyncio.run(_serve_twice_written_answers(6))
    assert nodelay != 0  # TCP_NODELAY on the accepted connection: a small body goes at once
    assert sorted(seconds)[len(seconds) // 2] < 0.035  # the median: no 40 ms delayed-ACK wait
