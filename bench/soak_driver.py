#!/usr/bin/env python3
"""Traffic for bench/soak.sh.

    soak_driver.py echo PORT                   an echo service on 127.0.0.1:PORT
    soak_driver.py visitors HOST PORT SECONDS  keeps 50 visitors busy through a
                                               tunnel for SECONDS; prints a summary

A visitor sends a random amount (up to 1 MiB) and reads it back, checking
every byte; one in five vanishes mid-transfer instead: an RST, or a close
without reading what comes back. Exits 1 if any complete echo came back
wrong (or a visitor hung for 30 s).
"""
import asyncio
import hashlib
import os
import random
import socket
import struct
import sys
import time


async def echo(port):
    async def handle(r, w):
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


async def visitor(host, port, rng, stats):
    size = rng.randint(1, 1 << 20)
    payload = rng.randbytes(size)
    vanish = rng.random() < 0.2
    r, w = await asyncio.open_connection(host, port)
    try:
        if vanish:
            w.write(payload[: size // 2])
            await w.drain()
            if rng.random() < 0.5:
                sock = w.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            w.close()  # RST, or a FIN with the echo left unread
            stats["vanished"] += 1
            return

        async def send():
            for i in range(0, size, 65536):
                w.write(payload[i:i + 65536])
                await w.drain()
            w.write_eof()
        sender = asyncio.create_task(send())
        got = hashlib.sha256()
        n = 0
        while n < size:
            chunk = await r.read(65536)
            if not chunk:
                break
            got.update(chunk)
            n += len(chunk)
        await sender
        if n == size and got.digest() == hashlib.sha256(payload).digest():
            stats["ok"] += 1
            stats["bytes"] += size
        else:
            stats["bad"] += 1
    finally:
        w.close()


async def visitors(host, port, seconds):
    rng = random.Random(int.from_bytes(os.urandom(8), "big"))
    stats = {"ok": 0, "bad": 0, "vanished": 0, "errors": 0, "bytes": 0}
    end = time.monotonic() + seconds

    async def worker():
        while time.monotonic() < end:
            try:
                await asyncio.wait_for(visitor(host, port, rng, stats), 30)
            except asyncio.TimeoutError:
                stats["bad"] += 1
            except (ConnectionError, OSError):
                stats["errors"] += 1  # e.g. the tunnel was briefly unreachable
                await asyncio.sleep(0.1)
    await asyncio.gather(*(worker() for _ in range(50)))
    print(f"{stats['ok']} visitors echoed {stats['bytes'] / 1e9:.2f} GB intact, "
          f"{stats['vanished']} vanished mid-transfer, {stats['errors']} connection errors, "
          f"{stats['bad']} wrong or hung")
    return 0 if stats["bad"] == 0 else 1


def main():
    if sys.argv[1] == "echo":
        asyncio.run(echo(int(sys.argv[2])))
        return 0
    return asyncio.run(visitors(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))


if __name__ == "__main__":
    sys.exit(main())
