"""On PYTHONPATH of the servers that `bench.run --uvloop` starts: asyncio.run() uses uvloop.

An experiment without touching src/: the service and the ceiling run unchanged, on libuv's
event loop instead of asyncio's own.
"""

import asyncio

import uvloop  # type: ignore[import-not-found, unused-ignore]

asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
