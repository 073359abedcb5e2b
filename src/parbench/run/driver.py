"""The driver: the fresh process in which one run happens (`python -m parbench.run.driver RUN_ID OUT`,
with the supervisor's pid in $PARBENCH_SUPERVISOR_PID).

It writes the record so far to OUT after every phase, and the finished record at the end. An
exception the runner lets through (a bug in parbench) exits with BUG_EXIT. When the memory
limit is passed it writes an `oom` record and kills its whole process tree itself, so the
supervisor finds the record and nothing keeps eating memory.
"""

import json
import os
import signal
import sys
import threading
import time
import traceback

import psutil

from parbench import records, worker

SUPERVISOR = "PARBENCH_SUPERVISOR_PID"
# The driver's exit code for a bug in parbench (an exception the runner did not turn into a record);
# any other unfinished end (a library that exits, a signal) is a failed run. 70 is EX_SOFTWARE.
BUG_EXIT = 70


def kill_tree(root: psutil.Process, include_root: bool = True) -> int:
    """SIGKILL every descendant of `root` (and `root`); returns how many processes were signalled."""
    procs = root.children(recursive=True) + ([root] if include_root else [])
    for proc in procs:
        try:
            if proc.pid != os.getpid():
                proc.kill()
        except psutil.NoSuchProcess:
            pass
    return len(procs)


def end_run() -> None:
    """SIGKILL this driver's whole run: its descendants (a library may start some in a session of its own), then
    its process group at once, the driver with it (the supervisor starts it as the group's leader), so that no
    Pool worker forked after the listing outlives the run, holding the Pool's semaphores in /dev/shm."""
    kill_tree(psutil.Process(), include_root=False)
    if os.getpgid(0) == os.getpid():
        os.killpg(0, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def die_with_parent(parent: int, poll_s: float = 0.2) -> None:
    """End this run, workers first, once the supervisor (pid `parent`, passed in so that a
    supervisor that died before we got here is noticed too) is gone: a driver must not outlive its sweep."""

    def watch():
        while os.getppid() == parent:
            time.sleep(poll_s)
        end_run()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(spec_path: str, out_path: str) -> None:
    from parbench.run import runner  # here, not above: the supervisor imports this module and needs no numpy

    die_with_parent(int(os.environ[SUPERVISOR]))
    worker.catch_faults()  # a crash or abort leaves the stack for the run's log: the supervisor names the user's line
    with open(spec_path) as f:
        spec = json.load(f)

    def stop_for_memory(record):
        records.write(out_path, record)
        end_run()

    record = runner.run(spec, lambda record: records.write(out_path, record), stop_for_memory)
    if left := worker.threads_left():  # the user's tasks started them: the run is done, they end with the driver
        record["threads_left"] = left
        print(f"parbench: the run is done; ending the threads its tasks left running: {'; '.join(left)}", file=sys.stderr)
    records.write(out_path, record)
    if left:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # Python's exit would wait for them: a finished run recorded as a timeout


if __name__ == "__main__":
    try:
        main(*sys.argv[1:3])
    except Exception:
        traceback.print_exc()
        sys.exit(BUG_EXIT)
