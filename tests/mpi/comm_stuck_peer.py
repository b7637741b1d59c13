#!/usr/bin/env python3
# Why this file exists: the MPI communicator's timeout under real mpirun (CTest
# comm_stuck_peer). Its collectives are blocking MPI calls guarded by a watchdog thread, so
# the check must be a whole job: a rank that is stuck (sleeps far past comm.timeout_s) or
# dead (SIGKILL) while the others wait in a collective must end the job with exit code 1 and
# `ladder: error on rank R: rank R: collective OP ... did not complete within T s` from a
# waiting rank, no sooner than the timeout and within a few seconds after it (a dead peer:
# a non-zero exit within that time, from mpirun or the watchdog, naming a rank). Every
# collective, on 2 ranks; all-reduce on 4 ranks with a middle rank stuck; a dead peer.
# Python 3 standard library only.
import argparse
import os
import re
import subprocess
import sys
import time

# After the watchdog's exit, mpirun ends the other ranks: SIGTERM, then SIGKILL after its
# odls_base_sigkill_timeout (1 s), so a stuck rank adds about a second; the rest is load.
SLACK_S = 5.0

# (operation, what the message says after its name)
OPERATIONS = [("all_reduce_sum", " of 5 f32"), ("reduce_scatter_sum", " of 3 bf16"),
              ("all_gather", " of 4 f64"), ("broadcast", " of 6 f32"), ("barrier", "")]


def run_case(args, ranks, op, detail, peer, mode, timeout_s):
    """Launches the job; returns a list of failures (empty when the case passes)."""
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1")
    command = [args.mpiexec, "--oversubscribe", "-np", str(ranks), args.program, op,
               str(timeout_s), str(peer), mode]
    name = f"{ranks} ranks, rank {peer} {mode}, {op}, timeout {timeout_s} s"
    try:
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=env, timeout=20 * timeout_s + 30)
    except subprocess.TimeoutExpired:
        return [f"{name}: the job did not end"]
    ended = time.monotonic()
    output = result.stdout
    failures = []
    entered = [float(t) for t in re.findall(r"^rank \d+ enters \S+ at ([0-9.]+)$", output, re.M)]
    if len(entered) != ranks - 1:
        failures.append(f"{len(entered)} of {ranks - 1} waiting ranks entered the collective")
    if "completed" in output:
        failures.append("a rank completed the collective")
    lines = re.findall(r"ladder: error on rank (\d+): rank (\d+): collective (.*)", output)
    want = f"{op}{detail} did not complete within {timeout_s:g} s (a peer failed or is stuck)"
    named = [(int(a), int(b)) for a, b, what in lines if what.strip() == want]
    if any(a != b or a == peer for a, b in named):
        failures.append(f"the error names the wrong rank: {named}")
    if mode == "stuck":  # the watchdog ends the job, naming a waiting rank and the operation
        if result.returncode != 1:
            failures.append(f"exit code {result.returncode}, want 1")
        if not named:
            failures.append(f"no line 'ladder: error on rank R: rank R: collective {want}'")
    else:  # mpirun ends the job when it sees the death, or the watchdog does, whichever first
        if result.returncode == 0:
            failures.append("exit code 0")
        if not named and f"process rank {peer} " not in output:
            failures.append(f"neither the watchdog nor mpirun named a rank")
    if entered:  # ended no sooner than the timeout after the last rank entered, and promptly
        waited = ended - max(entered)
        if not timeout_s <= waited + 0.05 and mode == "stuck":
            failures.append(f"ended {waited:.2f} s after the collective began, before the timeout")
        if waited > timeout_s + SLACK_S:
            failures.append(f"ended {waited:.2f} s after the collective began, "
                            f"over the timeout + {SLACK_S} s")
        print(f"{name}: exit {result.returncode} {waited:.2f} s after the collective began")
    return [f"{name}: {failure}\n--- output ---\n{output}" for failure in failures]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--program", required=True, help="the comm_stuck_peer binary")
    parser.add_argument("--mpiexec", default="mpirun")
    args = parser.parse_args()
    failures = []
    for op, detail in OPERATIONS:
        failures += run_case(args, 2, op, detail, peer=1, mode="stuck", timeout_s=1)
    failures += run_case(args, 4, "all_reduce_sum", " of 5 f32", peer=2, mode="stuck", timeout_s=1.5)
    failures += run_case(args, 2, "all_reduce_sum", " of 5 f32", peer=1, mode="dead", timeout_s=2)
    for failure in failures:
        print("FAIL", failure)
    print("PASS" if not failures else f"FAIL: {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
