#!/usr/bin/env python3
# Why this file exists: BRIEF §5 "Checkpoint" preemption: SIGTERM, SIGUSR1 or SIGINT on any
# rank makes every rank finish the current optimizer step, write a checkpoint and exit 75, so
# a scheduler's warning signal loses at most a step or two. On 2 ranks, signals sent from
# outside while training: (a) SIGUSR1 to mpirun (which forwards it to every rank), (b) SIGTERM
# to every rank process, (c) SIGINT to one rank process only. Each must exit 75 within
# STOP_BOUND_S with a valid checkpoint at the step training reached (at most 2 steps past the
# last one seen before the signal), and `--resume auto` must finish the run with steps that
# strictly increase and metrics bit-identical to an uninterrupted run.
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import checkpoint_harness as h

STOP_BOUND_S = 10.0
STEPS_TOTAL = 60           # stages.images 960 at batch 16
SIGNAL_AFTER_STEP = 4      # send once metrics.jsonl shows this many steps


def preempt(hr, config, ref, name, how):
    run = hr.work / name
    launch = hr.launch(config, run, tag=name)
    ranks = launch.wait_for_ranks(2, 30)
    deadline = time.monotonic() + 60
    while h.last_step(run) < SIGNAL_AFTER_STEP:
        h.check(launch.poll() is None, f"{name}: train exited {launch.poll()} before step "
                f"{SIGNAL_AFTER_STEP}:\n{launch.output_tail()}")
        h.check(time.monotonic() < deadline, f"{name}: no step {SIGNAL_AFTER_STEP} in 60 s")
        time.sleep(0.002)
    seen = h.last_step(run)
    sent = time.monotonic()
    if how == "SIGUSR1 to mpirun":
        os.kill(launch.pid, signal.SIGUSR1)
    elif how == "SIGTERM to every rank":
        for pid in ranks:
            os.kill(pid, signal.SIGTERM)
    elif how == "SIGINT to one rank":
        os.kill(ranks[-1], signal.SIGINT)
    else:
        raise ValueError(how)
    ranks_done = None  # when every rank process had exited (mpirun takes ~1 s longer)
    while launch.poll() is None and time.monotonic() - sent < STOP_BOUND_S:
        if ranks_done is None and not set(ranks) & set(launch.session_pids()):
            ranks_done = time.monotonic() - sent
        time.sleep(0.002)
    code = launch.wait(0.01)
    took = time.monotonic() - sent
    ranks_done = took if ranks_done is None else ranks_done
    if code is None:
        launch.kill_all()
        raise h.TestFailure(f"{name}: still running {STOP_BOUND_S} s after {how} (sent after "
                            f"step {seen}):\n{launch.output_tail()}")
    launch.finish(1)
    h.check(code == h.EXIT_STOPPED, f"{name}: exit {code} after {how}, expected "
            f"{h.EXIT_STOPPED}:\n{launch.output_tail()}")
    deadline = time.monotonic() + 5
    while launch.session_pids():
        h.check(time.monotonic() < deadline, f"{name}: rank processes left after exit 75: "
                f"{launch.session_pids()}")
        time.sleep(0.01)
    latest = h.latest_name(run)
    h.check(latest is not None, f"{name}: exit 75 but no checkpoints/latest")
    step = h.step_of(latest)
    h.check(seen <= step <= seen + 2, f"{name}: stopped at checkpoint step {step}, but step "
            f"{seen} was the last logged before {how} (expected {seen}..{seen + 2})")
    rows = h.read_metrics(run)
    h.check(rows[-1]["step"] == step, f"{name}: metrics end at step {rows[-1]['step']}, the "
            f"checkpoint is at step {step}")
    h.check(step < STEPS_TOTAL, f"{name}: the stop checkpoint is the end of the run")
    hr.check_valid(h.latest_dir(run))
    h.check(h.manifest(h.latest_dir(run))["state"]["step"] == step,
            f"{name}: manifest step differs from {latest}")
    h.check(not h.temp_dirs(run), f"{name}: temporary dirs left: {h.temp_dirs(run)}")

    hr.train(config, run, expect=0)
    rows = h.read_metrics(run)
    h.check_steps_increase(rows, name)
    h.check([r["step"] for r in rows] == list(range(1, STEPS_TOTAL + 1)),
            f"{name}: logged steps after the resume: {[r['step'] for r in rows]}")
    h.compare_metrics(h.read_metrics(ref), rows, name)
    h.compare_checkpoints(h.latest_dir(ref), h.latest_dir(run), name)
    h.log(f"{name}: {how} after step {seen}: ranks exited {ranks_done:.2f} s and mpirun "
          f"with 75 {took:.2f} s after the signal, "
          f"checkpoint at step {step} (valid); resumed to step {STEPS_TOTAL}, metrics and final "
          f"shards identical to the uninterrupted run")
    return ranks_done, took


def body(hr):
    hr.pack(64, levels="32", seed=4)
    # ~75 ms per step on 2 cores, so a step or two pass between reading metrics and the stop
    config = hr.write_config(stages={"resolutions": 32, "images": 960},
                             train={"batch": 16, "micro_batch": 4},
                             checkpoint={"every": 1000, "keep": 2})
    ref = hr.work / "reference"
    _, seconds = hr.train(config, ref, expect=0)
    h.log(f"reference: uninterrupted, {STEPS_TOTAL} steps in {seconds:.2f} s")
    times = []
    for name, how in (("a", "SIGUSR1 to mpirun"), ("b", "SIGTERM to every rank"),
                      ("c", "SIGINT to one rank")):
        times.append(preempt(hr, config, ref, name, how))
    h.log("signal-to-exit times (ranks / mpirun): " +
          ", ".join(f"{r:.2f} s / {t:.2f} s" for r, t in times))


if __name__ == "__main__":
    h.main(body, h.Harness("preemption by signals: exit 75 with a checkpoint, resume"))
