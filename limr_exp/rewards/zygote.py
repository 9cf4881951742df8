"""The verifier pool's process factory: a subprocess that imports and warms Math-Verify once, then
forks a worker per request (fork from this single-threaded process is cheap and safe).

Unlike multiprocessing's spawn/forkserver start methods, it never imports the caller's `__main__`,
so the reward works from any script, notebook or Ray worker. It exits when its parent goes away.

    python -m limr_exp.rewards.zygote SOCKET_PATH     (started by pool.py; speaks on a Unix socket)
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
from multiprocessing.connection import Connection


def serve(conn: Connection, memory_limit_mb: int) -> None:
    """Worker loop: (settings, [(idx, response, answer), ...]) in, one (idx, result) out per task."""
    import resource

    from limr_exp.rewards.local import judge_local, reward_of
    from limr_exp.rewards.pool import ERROR

    if memory_limit_mb > 0:
        limit = memory_limit_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        settings, batch = message
        for idx, response, answer in batch:
            try:
                result = judge_local(response, answer, settings)
            except MemoryError:
                result = (reward_of("timeout", settings), False, "timeout", None)
            except Exception as e:  # a bug, not a verdict: reported to the caller
                result = (ERROR, f"{type(e).__name__}: {e}")
            conn.send((idx, result))


def main(path: str) -> None:
    import logging

    logging.disable(logging.CRITICAL)
    sys.set_int_max_str_digits(10_000)
    import limr_exp.rewards.local  # noqa: F401
    import limr_exp.rewards.warmup  # noqa: F401  (parser caches, inherited by every fork)

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers are reaped automatically
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's; it closes the pool (workers inherit this)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path + ".tmp")
    server.listen(64)
    os.rename(path + ".tmp", path)  # the socket appears only once it listens: a connect is never refused
    stdin = sys.stdin.fileno()
    while True:
        ready, _, _ = select.select([server, stdin], [], [])
        if stdin in ready and not os.read(stdin, 1024):
            os._exit(0)  # the parent is gone
        if server in ready:
            client, _ = server.accept()
            conn = Connection(client.detach())
            try:
                memory_limit_mb = conn.recv()
            except (EOFError, OSError):
                conn.close()
                continue
            pid = os.fork()
            if pid == 0:
                server.close()
                os.close(stdin)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                try:
                    conn.send(os.getpid())
                    serve(conn, memory_limit_mb)
                finally:
                    os._exit(0)
            conn.close()


if __name__ == "__main__":
    main(sys.argv[1])
