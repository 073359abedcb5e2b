"""I/O-bound work that waits on a real service: each task makes HTTP requests to a local server
on 127.0.0.1 that answers after a set latency. Threads should win; memory per worker matters.

The server is a process of its own, detached from the driver and started outside the run's cgroups
(like a remote service, its memory and CPU are not the backend's); it ends with the run.
"""

import hashlib
import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from parbench import cgroups
from parbench.workloads.base import BaseWorkload, Work, WorkloadError, pairs

# The server's listen backlog: socketserver's default of 5 drops the SYN of a 6th simultaneous connect,
# which the client's kernel sends again only after 1 s (8 workers' first connections came at once).
BACKLOG = 1024


def body(path: str, size: int) -> bytes:
    """The server's answer to `path`: `size` bytes that only that path gives."""
    seed = hashlib.sha256(path.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def fetch(state: dict, item) -> str:
    """One task: `requests` GETs in turn over one keep-alive connection; the SHA-256 of the answers."""
    item_id, requests = item
    connection = http.client.HTTPConnection(state["host"], state["port"], timeout=60)
    answers = hashlib.sha256()
    try:
        for j in range(requests):
            connection.request("GET", f"/{item_id}/{j}")
            response = connection.getresponse()
            data = response.read()
            if response.status != 200:
                raise OSError(f"HTTP {response.status} from the local server")
            answers.update(data)
    finally:
        connection.close()
    return answers.hexdigest()


def expected(item, size: int) -> str:
    item_id, requests = item
    answers = hashlib.sha256()
    for j in range(requests):
        answers.update(body(f"/{item_id}/{j}", size))
    return answers.hexdigest()


def as_state(host: str, port: int) -> dict:
    return {"host": host, "port": port}


class Workload(BaseWorkload):
    params_schema = {
        "latency_ms": {"type": "number", "minimum": 0, "default": 20, "description": "milliseconds the server waits before answering"},
        "requests": {"type": "integer", "minimum": 1, "default": 5, "description": "a positive integer (requests per item)"},
        "response_bytes": {"type": "integer", "minimum": 1, "default": 16384, "description": "a positive integer (bytes per answer)"},
    }
    run_defaults = {"batches": 5}

    def work(self) -> Work:
        self.server_pid, port, self.server_inside = start_server(self.params["latency_ms"] / 1000, self.params["response_bytes"])
        return Work(task=fetch, build=as_state, data={"host": "127.0.0.1", "port": port}, stateful=False)

    def items(self, batch: int, n: int) -> list:
        return [(f"{self.trial}-{batch}-{i}", self.params["requests"]) for i in range(n)]

    def verify(self, batch: int, items: list, digests: list) -> list[str]:
        size = self.params["response_bytes"]
        return [
            f"batch {batch} task {i}: the answers to {item[0]} differ from what the server sends"
            for i, (item, got) in enumerate(pairs(items, digests))
            if got != expected(item, size)
        ]

    def describe(self) -> dict:
        where = "outside the measured process tree and the run's cgroups (its CPU is left out of other work beside the run)"
        if getattr(self, "server_inside", None):
            where = f"outside the measured process tree, but inside the run's cgroups (their figures include it): {self.server_inside}"
        return {"service": f"local HTTP server on 127.0.0.1, {where}"}

    def service_cpu_s(self) -> float:
        """The server's CPU seconds so far (its threads included; /proc's 10 ms ticks)."""
        import psutil  # here, not at the top: a subinterpreter worker imports this module and cannot import psutil

        try:
            times = psutil.Process(self.server_pid).cpu_times()
        except (AttributeError, psutil.Error):  # not started, or gone
            return 0.0
        return times.user + times.system

    def close(self) -> None:
        pid = getattr(self, "server_pid", None)
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def start_server(latency_s: float, size: int) -> tuple[int, int, str | None]:
    """Start the server detached (a launcher starts it and exits, so it is not our descendant) and outside the
    run's cgroups (the launcher moves into the supervisor's groups before it execs); (pid, port, why it is
    inside the run's groups, or None)."""
    command = [sys.executable, "-m", "parbench.workloads.http", "launch", str(latency_s), str(size), str(os.getpid())]
    outside, inside = cgroups.outside_run(), None
    launcher = subprocess.run(cgroups.moved(outside, command) if outside else command, capture_output=True, text=True, timeout=60)
    if outside and launcher.returncode == cgroups.MOVE_FAILED:  # before exec: nothing of it started
        inside = f"it could not be moved out of them ({' '.join(launcher.stderr.split())[-200:]})"
        launcher = subprocess.run(command, capture_output=True, text=True, timeout=60)
    try:
        pid, port = map(int, launcher.stdout.split())
    except ValueError:
        raise WorkloadError(f"the local HTTP server did not start: {' '.join(launcher.stderr.split())[-300:]}") from None
    return pid, port, inside


def _launch(latency_s: str, size: str, owner: str) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "parbench.workloads.http", "serve", latency_s, size, owner],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip
    print(server.pid, server.stdout.readline().strip(), flush=True)


def _serve(latency_s: str, size: str, owner: str) -> None:
    delay, length, owner_pid = float(latency_s), int(size), int(owner)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: a task's requests share one connection
        disable_nagle_algorithm = True  # else the body waits ~40 ms for the client's delayed ACK of the headers

        def do_GET(self):
            time.sleep(delay)
            data = body(self.path, length)
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = BACKLOG
        daemon_threads = True

    server = Server(("127.0.0.1", 0), Handler)

    def watch():  # the run's driver is gone: so is its service
        while True:
            try:
                os.kill(owner_pid, 0)
            except ProcessLookupError:
                os._exit(0)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    {"launch": _launch, "serve": _serve}[sys.argv[1]](*sys.argv[2:5])
