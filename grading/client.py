"""The kernel's client: nbclient and jupyter_client, which receive and parse everything the kernel sends, in a process
of their own inside the job's limits.

`python -m grading.client` is started by the grader worker for each job (execute.KernelClient) in the job's control
group and under a soft address-space limit of MEMORY bytes: whatever the kernel sends (a message of hundreds of
megabytes, a flood of them, a forged signature, a message jupyter_client cannot parse) costs this process, never the
trusted worker. The worker sends one JSON line per request on this process's stdin (the kernel's settings first, then
each cell's source and time limit, then "stop"); this process answers each with one JSON line of at most
MAX_ANSWER_BYTES on stdout: the cell's outcome (done, raised with its error's name, value and traceback, timed out,
the kernel dead or not started) or that the client itself failed (then it exits). Nothing but those lines ever reaches
the worker; it reads them with a bounded readline and checks their form (execute.KernelClient).
"""

import contextlib
import functools
import json
import os
import resource
import subprocess
import sys

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

from grading import cgroups, sandbox

MEMORY = 2**30  # this process's address space (soft limit): an honest notebook's client stays under 300 MB
MAX_ANSWER_BYTES = 2**17  # of one answer line: its texts' caps, each character escaped in JSON (12 bytes at most)
MAX_TEXT = 4000  # characters of any one text in an answer: an error's traceback (execute.MAX_DETAIL_CHARS keeps 4,000)
MAX_NAME = 200  # characters of an error's name
MAX_VALUE = 2000  # characters of an error's value
STARTUP_S = 180  # the kernel's start, at most


class SandboxKernelManager(AsyncKernelManager):
    """A kernel manager that starts its kernel inside the sandbox, talking over IPC sockets in the job's folder."""

    def __init__(self, job, **kwargs):
        super().__init__(
            transport="ipc",
            ip=str(job.sockets / "kernel"),
            connection_file=str(job.sockets / "kernel.json"),
            kernel_name="python3",
            **kwargs,
        )
        self.job = job

    def format_kernel_cmd(self, extra_arguments=None):
        """The kernel's command, wrapped in the sandbox; the connection file handed to the sandbox user."""
        command = super().format_kernel_cmd(extra_arguments)
        ids = sandbox.owner(self.job.sandbox, self.job.slot)
        if ids is not None:
            os.chown(self.connection_file, *ids)
        return sandbox.kernel_command(
            command,
            self.job.sandbox,
            self.job.slot,
            self.job.limits,
            self.job.work,
            self.job.sockets,
            self.job.lab_dir,
            self.job.env,
            self.job.scratch,
        )

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        """Launch the kernel with its own output going nowhere (or to the trusted pre-flight's log), this process's
        own address-space limit lifted (the sandbox's prlimit sets the kernel's), and as its standard input the pipe
        the worker writes the challenge's hidden inputs into (never a file the kernel could fill or lock)."""
        log = open(self.job.kernel_log, "wb") if self.job.kernel_log else subprocess.DEVNULL  # noqa: SIM115
        kw.update(stdout=log, stderr=log, preexec_fn=lift_memory_limit)
        if self.job.stdin is not None:
            kw["stdin"] = self.job.stdin
        try:
            await super()._async_launch_kernel(kernel_cmd, **kw)
        finally:
            if log is not subprocess.DEVNULL:
                log.close()  # the kernel holds its own copy
            if self.job.stdin is not None:
                os.close(self.job.stdin)  # so is the pipe's: the kernel alone reads it
                self.job.stdin = None


def lift_memory_limit():
    """In a process about to exec: the address-space limit back to its hard limit (called between fork and exec)."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))


def confine(procs_files):
    """In the client process about to exec (from the worker): join the job's control group, if any, and take on the
    soft address-space limit MEMORY; die with the worker."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if procs_files:
        cgroups.join(procs_files)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY if hard == resource.RLIM_INFINITY else min(MEMORY, hard), hard))


def start(settings, procs_files=(), stdin=None):
    """Start the client process for a job: subprocess.Popen, its settings (kernel_settings) already sent. stdin: the
    file descriptor the kernel gets as its standard input (the pipe whose other end only the worker holds, for the
    challenge's hidden inputs: challenge.hand_over), passed on under the same number."""
    settings = {**settings, "stdin": stdin}
    proc = subprocess.Popen(
        [sys.executable, "-m", "grading.client"],
        cwd=settings["lab_dir"],
        env={**os.environ, "MALLOC_ARENA_MAX": "2"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # what a hostile kernel makes the client's libraries say goes nowhere
        preexec_fn=functools.partial(confine, list(procs_files)),
        pass_fds=() if stdin is None else (stdin,),
    )
    proc.stdin.write(json.dumps(settings).encode("utf-8") + b"\n")
    proc.stdin.flush()
    return proc


def job_view(settings):
    """The kernel's settings (execute.Job.kernel_settings, as JSON) as the attributes SandboxKernelManager reads."""
    from pathlib import Path
    from types import SimpleNamespace

    box = settings["sandbox"]
    hierarchy = box["hierarchy"] and cgroups.Hierarchy(box["hierarchy"][0], tuple(box["hierarchy"][1]))
    scratch = settings["scratch"]
    return SimpleNamespace(
        sandbox=sandbox.Sandbox(
            tuple(tuple(ids) for ids in box["users"]), box["bwrap"], tuple(box["missing"]), hierarchy, box["space"]
        ),
        slot=settings["slot"],
        limits=sandbox.Limits(*settings["limits"]),
        work=Path(settings["work"]),
        sockets=Path(settings["sockets"]),
        lab_dir=settings["lab_dir"],
        env=settings["env"],
        scratch=scratch and {inside: Path(path) for inside, path in scratch.items()},
        kernel_log=settings["kernel_log"],
        stdin=settings.get("stdin"),
    )


def answer(**fields):
    """Say one answer on stdout: a JSON line, its texts capped."""
    capped = {key: value[:MAX_TEXT] if isinstance(value, str) else value for key, value in fields.items()}
    sys.stdout.write(json.dumps(capped) + "\n")
    sys.stdout.flush()


def outcome(client, source, index):
    """Run one cell; the answer's fields: done, raised, timed out, or dead."""
    import nbformat
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    cell = nbformat.v4.new_code_cell(source)
    client.nb.cells = [cell]  # nbclient writes the executed cell back: only this one is ever held
    try:
        client.execute_cell(cell, 0)
    except CellExecutionError as err:
        return {"raised": [str(err.ename)[:MAX_NAME], str(err.evalue)[:MAX_VALUE], str(err)[:MAX_TEXT]]}
    except CellTimeoutError as err:
        return {"timed_out": str(err)}
    except DeadKernelError as err:
        return {"dead": str(err)}
    finally:
        cell.outputs = []
    return {"done": index}


def serve(requests=sys.stdin):
    """Start the job's kernel as the first request says, run each cell asked for, stop at "stop" or end of input."""
    import nbformat

    from run_notebook import notebook_client

    view = job_view(json.loads(requests.readline()))
    km = SandboxKernelManager(view)
    client = notebook_client(
        nbformat.v4.new_notebook(), view.work, 60, km=km, allow_errors=False, startup_timeout=STARTUP_S
    )
    keep_nothing(client)
    with contextlib.ExitStack() as stack:
        stack.callback(stop, km, client)
        try:
            stack.enter_context(client.setup_kernel(env=view.env, cleanup_kc=True))
        except Exception as err:
            answer(not_started=f"{type(err).__name__}: {err}")
            return
        answer(started=True)
        for index, line in enumerate(requests):
            request = json.loads(line)
            if "source" not in request:
                break
            client.timeout = request["timeout"]
            try:
                answer(**outcome(client, request["source"], index))
            except BaseException as err:  # anything else the kernel's messages caused: this client is done
                answer(broke=f"{type(err).__name__}: {err}")
                return
    answer(stopped=True)


def keep_nothing(client):
    """Have nbclient's client keep nothing the kernel sends: verdicts never read outputs, so a flood of prints, displays
    or comm (widget) messages, whose state and buffers nbclient would keep, cannot fill this process's memory."""
    client.output = drop_output
    client.handle_comm_msg = drop_comm_msg
    client.store_widget_state = False


def drop_output(outs, msg, display_id, cell_index):
    """nbclient's output hook, keeping nothing."""
    return None


def drop_comm_msg(outs, msg, cell_index):
    """nbclient's comm message handler, keeping nothing (no widget state, buffers or comm objects)."""
    return None


def stop(km, client):
    """Stop the kernel and its sandbox, whatever state they are in."""
    try:
        if client.kc is not None:
            client.kc.stop_channels()
    except Exception:
        pass
    try:
        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=True)
    except Exception:
        pass


if __name__ == "__main__":
    serve()
