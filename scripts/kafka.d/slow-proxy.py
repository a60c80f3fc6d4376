#!/usr/bin/env python3
"""A slow broker: a TCP proxy in front of one Kafka node's client listener that delays what
clients send it.

    slow-proxy.py LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_FILE

Every chunk a client sends is held until DELAY_FILE's milliseconds (an integer; missing or empty:
0) have passed since it arrived, then forwarded in order; the broker's answers pass at once. So
each request, and each acknowledgement, comes that much later, as from a broker that is slow to
read. `scripts/kafka slow N MS` writes the file; the proxy reads it again every half second.

Bounded: localhost only (it refuses other addresses), at most 512 connections at a time, each
direction's queue at most 64 MiB (the client waits while it is full). Ends on SIGTERM.
"""

import asyncio
import signal
import sys
import time

MAX_CONNECTIONS = 512
MAX_QUEUED = 64 * 1024 * 1024


def loopback(host):
    return host.startswith("127.")


class Delay:
    """The delay in seconds, as DELAY_FILE says (read at most every half second)."""

    def __init__(self, path):
        self.path = path
        self.value = 0.0
        self.read_at = 0.0

    def seconds(self):
        now = time.monotonic()
        if now - self.read_at >= 0.5:
            self.read_at = now
            try:
                with open(self.path) as f:
                    self.value = max(0, int(f.read().strip() or 0)) / 1000
            except (OSError, ValueError):
                self.value = 0.0
        return self.value


async def pipe_now(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def pipe_delayed(reader, writer, delay):
    # (due time, chunk) in arrival order; the size bound makes the reader wait when full.
    queue = asyncio.Queue()
    room = asyncio.Semaphore(MAX_QUEUED // 65536)

    async def take():
        try:
            while data := await reader.read(65536):
                await room.acquire()
                queue.put_nowait((time.monotonic() + delay.seconds(), data))
        except (ConnectionError, asyncio.CancelledError):
            pass
        queue.put_nowait((0, b""))

    async def give():
        try:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
                room.release()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    await asyncio.gather(take(), give())


async def main():
    host, port, target_host, target_port, delay_file = sys.argv[1:6]
    if not (loopback(host) and loopback(target_host)):
        sys.exit("slow-proxy: localhost addresses only")
    delay = Delay(delay_file)
    slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def serve(client_reader, client_writer):
        async with slots:
            try:
                up_reader, up_writer = await asyncio.open_connection(target_host, int(target_port))
            except OSError:
                client_writer.close()
                return
            try:
                await asyncio.gather(
                    pipe_delayed(client_reader, up_writer, delay),
                    pipe_now(up_reader, client_writer),
                )
            except asyncio.CancelledError:
                pass  # the proxy is ending

    server = await asyncio.start_server(serve, host, int(port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
