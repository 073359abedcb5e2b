"""The http workload's local server: it takes every worker's connection at once, and it stands outside the run's cgroups."""

import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys

import pytest
from conftest import OFFERED

from parbench import cgroups
from parbench.workloads import http

TCP_ESTABLISHED = 1


def test_the_server_queues_every_workers_connection_without_a_syn_retransmit():
    """With the server stopped (accepting nothing), 32 simultaneous connects all complete: none waits for the
    kernel to resend its SYN (1 s later), which is what a listen backlog of 5 did to the 6th of 8 workers."""
    pid, port, _ = http.start_server(0.0, 10)
    os.kill(pid, signal.SIGSTOP)
    sockets = []
    try:
        for _ in range(32):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            sockets.append(s)
        # On loopback a queued connection completes within connect() itself; a dropped SYN is resent after 1 s.
        select.select([], sockets, [], 0.5)
        # struct tcp_info begins with tcpi_state, tcpi_ca_state, tcpi_retransmits (one byte each).
        states, _, retransmits = zip(*(struct.unpack("3B", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[:3]) for s in sockets))
        assert states.count(TCP_ESTABLISHED) == len(sockets), f"{states.count(TCP_ESTABLISHED)} of {len(sockets)} connected"
        assert set(retransmits) == {0}
    finally:
        for s in sockets:
            s.close()
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGTERM)


DRIVER = """
import json, sys
from parbench.workloads import http
w = http.Workload({"latency_ms": 0, "requests": 1, "response_bytes": 10}, 1)
w.work()
print(json.dumps({"pid": w.server_pid, "service": w.describe()["service"]}), flush=True)
sys.stdin.read()
w.close()
"""


@pytest.mark.skipif(None in OFFERED.values(), reason="the kernel offers this process no memory and CPU groups")
def test_the_server_is_outside_the_runs_cgroups():
    """A driver inside its run's groups starts the server in the supervisor's groups: its CPU and memory are not the run's."""
    groups = cgroups.RunGroups()
    env = {**os.environ, **groups.env(), "PYTHONPATH": os.pathsep.join(sys.path)}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                              preexec_fn=groups.enter)  # fmt: skip
    try:
        told = json.loads(driver.stdout.readline())
        for group in groups.groups.values():
            assert driver.pid in cgroups.procs(group), "the driver is in the run's group"
            assert told["pid"] not in cgroups.procs(group), f"the server is in the run's {group.kind} group"
            parent = cgroups.Group(group.kind, os.path.dirname(group.path), "", "")
            assert told["pid"] in cgroups.procs(parent), "the server is in the supervisor's group"
        assert "outside the measured process tree and the run's cgroups" in told["service"]
    finally:
        driver.communicate("")
        groups.remove()


def test_the_servers_cpu_is_not_counted_as_other_work_beside_the_run():
    """The server is outside the tree, so its CPU counted as other work in the busy flag (0.05-0.23 of a core at
    http in a quiet sweep); each timed batch now leaves it out, and says how much it was."""
    from conftest import make_spec

    from parbench.run import runner

    record = runner.run(make_spec("threads", "http", 8, latency_ms=0, requests=20, batches=3, warmup_batches=1))
    assert record["status"] == "ok", record["reason"]
    service = record["cpu"]["service_batch_s"]
    assert len(service) == len(record["timings"]["batch_s"]) and sum(service) > 0, service
    w = http.Workload({"latency_ms": 0, "requests": 1, "response_bytes": 10}, 1)
    assert w.service_cpu_s() == 0.0, "no server yet: nothing to leave out"


class _Sampler:
    """What Clock reads of the memory sampler: its phase and its own CPU."""

    cpu_s = 0.0

    def phase(self, name):
        pass


@pytest.mark.parametrize("service,expected", [(lambda: 5.0, [0.0, 0.0]), (lambda: None, None)], ids=["a-service", "none"])
def test_a_service_that_used_no_cpu_in_a_batch_still_has_that_batchs_figure(service, expected):
    """A batch in which the server used under one 10 ms tick was left out of service_batch_s, so the list stopped
    pairing with batch_s (one of three batches missing, once in the suite); a workload without one has none."""
    from parbench.run import runner

    timings, cpu, system = {"batch_s": []}, {}, {}
    clock = runner.Clock(timings, _Sampler(), cpu, lambda: 0.0, system, service)
    for _ in range(2):
        with clock.timed("batch_s", "batch"):
            pass
    assert cpu.get("service_batch_s") == expected and len(system["other_cpu_batch_s"]) == 2, cpu
