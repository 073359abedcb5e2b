"""Code that runs inside workers, shared by every backend.

Every task goes through `call` (state built per task) or `call_kept` (state built once per
process and kept), on every backend serial included, so every backend applies the BLAS policy the
same way and reports the same facts from inside its workers: process and thread, BLAS threads
seen, and whether the task built state. A task sends those facts in full only the first time its
worker (process and thread) runs a task; after that a small number stands for them (`mark`,
turned back into a Seen by `Marks` in the driver, outside every timer), so the per-task
bookkeeping is one dictionary lookup and a few bytes on every backend. An exception raised by a
workload's own code comes back as a `TaskError` with a short plain-text reason, the same on every
backend.
"""

import os
import random
import re
import socket
import sys
import threading
import time
import traceback
from typing import NamedTuple

from threadpoolctl import threadpool_info, threadpool_limits

_prepared = False
prepared_at = None  # time.time() when this process applied the policy: every backend's start() does it in every worker
_blas_threads = None  # threads seen in this process after applying the policy
_kept = {}  # state built once per process, by key
_lock = threading.Lock()  # a thread-pool backend prepares and builds from several threads
_mine: dict[int, int] = {}  # thread ident -> its worker's token, once the worker has sent its Seen
os.register_at_fork(after_in_child=_mine.clear)  # a forked worker is another worker: it sends its own Seen


class Seen(NamedTuple):
    """What a task saw inside its worker."""

    pid: int
    thread: int
    blas_threads: int | None
    built_state: bool
    node: str = socket.gethostname()  # a backend whose nodes can share a host (Ray) names them itself
    token: int = 0  # the worker's number: its later tasks send only this (and whether they built state)


# Characters of an error's message that go into a cause: a record holds one short line (a task once raised 1 MB).
MESSAGE_LIMIT = 300


class TaskError(Exception):
    """A workload's task or state build raised inside a worker: the run failed, parbench did not. str() is
    one short line; `whole` the whole traceback, which the driver prints to the run's log."""

    def __init__(self, message: str, whole: str | None = None):
        super().__init__(message, whole)
        self.whole = whole

    def __str__(self) -> str:
        return self.args[0]


def blas_threads_now() -> int | None:
    """Threads of the BLAS library numpy uses in this process (None if threadpoolctl sees none)."""
    counts = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    return max(counts) if counts else None


def prepare(blas_threads: int | None) -> int | None:
    """Apply the BLAS policy once per process (None leaves the library's own choice)."""
    global _prepared, _blas_threads, prepared_at
    if _prepared:  # every task calls this: no lock once done
        return _blas_threads
    with _lock:
        if not _prepared:
            try:
                import numpy  # noqa: F401  (load BLAS so threadpoolctl can see and limit it)
            except ImportError:  # a subinterpreter cannot import numpy: no BLAS runs there
                pass

            catch_faults()

            if blas_threads is not None:
                threadpool_limits(limits=blas_threads, user_api="blas")
            _blas_threads = blas_threads_now()
            _prepared, prepared_at = True, time.time()
    return _blas_threads


def begin(blas_threads: int | None) -> int | None:
    """A new run in this process (a backend's start, where its processes may outlive a run: the driver's
    own, an external Dask cluster's): its workers send their Seen afresh, then `prepare`."""
    _mine.clear()
    return prepare(blas_threads)


def mark(threads: int | None, built: bool, node=None) -> "Seen | int":
    """What a task saw: its worker's Seen on the worker's first task, afterwards the worker's token
    (an even number) plus 1 if this task built state. `node()`, where given, names the node (once per worker)."""
    token = _mine.get(threading.get_ident())
    if token is not None:
        return token | built
    token = random.getrandbits(30) << 1  # under 2**31: pickles in 5 bytes; two of a run's 100 workers share one once in 200,000 runs
    first = Seen(os.getpid(), threading.get_native_id(), threads, built, node() if node else socket.gethostname(), token)
    _mine[threading.get_ident()] = token
    return first


class Marks:
    """The driver's side of `mark`: every worker's Seen by its token."""

    def __init__(self):
        self.known: dict[int, Seen] = {}

    def resolve(self, marks: list) -> list[Seen]:
        """The Seen of each of a batch's marks (a worker's full Seen may come later in the batch than its token)."""
        self.known.update((m.token, m) for m in marks if isinstance(m, Seen))
        return [m if isinstance(m, Seen) else self.known[m & ~1]._replace(built_state=bool(m & 1)) for m in marks]


def where(error: BaseException, fn=None) -> str:
    """'wordcount.py, line 12, in task': the deepest frame in `fn`'s own file, else the deepest frame."""
    frames = traceback.extract_tb(error.__traceback__)
    if isinstance(error, SyntaxError) and error.filename:
        return f"{os.path.basename(error.filename)}, line {error.lineno}"
    callables = [fn, getattr(fn, "func", None), *getattr(fn, "args", ())]  # a chunked task is a partial of `each`
    homes = {c.__code__.co_filename for c in callables if hasattr(c, "__code__")} - {__file__}
    own = [f for f in frames if f.filename in homes] or frames
    if not own:
        return ""
    frame = own[-1]
    return f"{os.path.basename(frame.filename)}, line {frame.lineno}, in {frame.name}"


def describe_error(what: str, error: BaseException, fn=None) -> str:
    """'task raised KeyError: 'x' (wordcount.py, line 12, in task)': one line, no traceback. A message
    longer than MESSAGE_LIMIT is cut (the driver prints the whole traceback to the run's log)."""
    text = " ".join(traceback.format_exception_only(type(error), error)[-1].split())
    if len(text) > MESSAGE_LIMIT:
        text = f"{text[:MESSAGE_LIMIT]}… (cut from {len(text):,} characters; the whole is in the run's log)"
    place = where(error, fn)
    return f"{what} raised {text}" + (f" ({place})" if place else "")


def threads_left() -> list[str]:
    """The threads besides the main one that would keep this process from exiting, and where each is now."""
    frames = sys._current_frames()
    out = []
    for t in threading.enumerate():
        if t is threading.main_thread() or t.daemon or not t.is_alive():
            continue
        frame = frames.get(t.ident)
        code = frame.f_code if frame else None
        out.append(f"{t.name} at {os.path.basename(code.co_filename)}, line {frame.f_lineno}, in {code.co_name}" if frame else t.name)
    return out


def guarded(what: str, fn, /, *args, **kwargs):
    """`fn(*args, **kwargs)`; an exception it raises becomes a TaskError naming `what` and where."""
    try:
        return fn(*args, **kwargs)
    except BaseException as error:  # sys.exit() and KeyboardInterrupt in a task are the task's faults too (the driver has its own session)
        raise TaskError(describe_error(what, error, fn), "".join(traceback.format_exception(error))) from None


# A folder (the supervisor's, per run) where each process of the run writes its own faulthandler dump: two
# workers that abort at once into one log interleave their dumps byte by byte.
FAULTS_ENV = "PARBENCH_FAULTS"
_fault_file = None


def catch_faults() -> None:
    """A crash or abort of this process (a task's os.abort, a segfault in an extension) leaves every thread's
    stack in $PARBENCH_FAULTS/PID.txt, which the supervisor puts in the run's log (else in stderr)."""
    global _fault_file
    try:
        import faulthandler  # here: a subinterpreter cannot import it (its process's main interpreter has it on)
    except ImportError:
        return
    folder = os.environ.get(FAULTS_ENV)
    path = os.path.join(folder, f"{os.getpid()}.txt") if folder else None
    if _fault_file is not None and _fault_file.name == path:
        return  # this process's own already (a forked worker inherits its parent's, and opens its own)
    if path and os.path.isdir(folder):
        _fault_file = open(path, "w")  # kept open: faulthandler writes to its fd
        faulthandler.enable(file=_fault_file, all_threads=True)
    else:
        faulthandler.enable()


# A frame line of a faulthandler dump (most recent call first).
FAULT_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+) in (\S+)', re.MULTILINE)
FATAL = "Fatal Python error"


def fault_place(output: str) -> str | None:
    """'mine.py, line 9, in task': where the last fatal error a faulthandler dumped in `output` happened, in
    the user's code (the innermost frame outside Python's own files, its packages and parbench), else None."""
    if FATAL not in output:
        return None
    ours = (sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(__file__)))
    for file, line, fn in FAULT_FRAME.findall(output.rsplit(FATAL, 1)[1]):
        if not os.path.abspath(file).startswith(ours):
            return f"{os.path.basename(file)}, line {line}, in {fn}"
    return None


def call(task, build, data: dict, item, blas_threads, node=None):
    """Build the state from `data`, then run one task: the state lives only as long as the task."""
    threads = prepare(blas_threads)
    state = guarded("building the state", build, **data)
    return guarded("task", task, state, item), mark(threads, True, node)


def keep(key, build, data: dict, blas_threads) -> bool:
    """Build the state once in this process and keep it under `key`; True if it was built now."""
    prepare(blas_threads)
    if key in _kept:  # joblib's tasks call this every time: no lock once built
        return False
    with _lock:
        if key in _kept:
            return False
        _kept[key] = guarded("building the state", build, **data)
        return True


def call_kept(task, key, item, blas_threads, build=None, data=None, node=None):
    """Run one task on the state kept under `key` (built here first if `build` is given and it is missing)."""
    threads = prepare(blas_threads)
    built = keep(key, build, data, blas_threads) if build is not None else False
    return guarded("task", task, _kept[key], item), mark(threads, built, node)


def each(task, many, state, items: list) -> list:
    """One task over a chunk of items: the workload's own `many(state, items)` where it has one."""
    return many(state, items) if many is not None else [task(state, item) for item in items]


def drop(key) -> None:
    _kept.pop(key, None)
