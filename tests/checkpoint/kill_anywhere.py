#!/usr/bin/env python3
# Why this file exists: BRIEF §5 "Checkpoint" says incomplete or corrupt checkpoints are never
# loaded and `latest` is replaced atomically, so a job SIGKILLed at any moment and requeued
# with the same command line (`--resume auto`, also on the first launch) must go on as if it
# had never been killed. On 2 ranks: at least 20 cycles of train -> SIGKILL of one rank ->
# relaunch, half of the kills while a checkpoint is in flight (LADDER_TEST_CHECKPOINT_PAUSE_S
# keeps it in flight; some then kill the whole job at once), half at random times (0.1-1.5 s
# after the launch); after every kill `latest` (when it exists) must inspect valid and never
# move back, every relaunch must resume or be killed by us (never exit 1 or 2), and the
# finished chain must equal an uninterrupted run: bit-identical metrics values and
# byte-identical final shards.
import os
import random
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import checkpoint_harness as h

KILLS = 20                 # cycles that end in a SIGKILL
PAUSE_S = 0.2              # each checkpoint stays in flight this long
STEPS_TOTAL = 100 + 40     # stages.images 400,160 at batch 4
CHAIN_TIMEOUT_S = 30       # one launch never needs longer


def tmp_steps(run, since=None):
    """Steps of the .tmp-step-N directories; with `since` (a time.time()), only those this
    launch wrote into (the directory or a file in it changed after `since`), so stale ones
    left by an earlier kill do not count."""
    steps = []
    for name in h.temp_dirs(run):
        tail = name[len(".tmp-step-"):] if name.startswith(".tmp-step-") else ""
        if not tail.isdigit():
            continue
        if since is not None:
            path = Path(run) / "checkpoints" / name
            try:
                changed = max([path.stat().st_mtime] +
                              [f.stat().st_mtime for f in path.iterdir()])
            except FileNotFoundError:  # committed or removed meanwhile
                continue
            if changed < since:
                continue
        steps.append(int(tail))
    return steps


def latest_step(run):
    name = h.latest_name(run)
    return h.step_of(name) if name else 0


def body(hr):
    seed = hr.args.seed if hr.args.seed is not None else 20261201
    rng = random.Random(seed)
    hr.pack(64, levels="16,32", seed=2)
    config = hr.write_config(stages={"images": "400,160"}, checkpoint={"every": 3, "keep": 2})
    pause = {"LADDER_TEST_CHECKPOINT_PAUSE_S": str(PAUSE_S)}
    started = time.monotonic()

    ref = hr.work / "reference"
    _, seconds = hr.train(config, ref, expect=0)
    ref_rows = h.read_metrics(ref)
    h.check(len(ref_rows) == STEPS_TOTAL, f"reference logged {len(ref_rows)} steps")
    h.log(f"reference: uninterrupted, {STEPS_TOTAL} steps in {seconds:.2f} s (seed {seed})")

    run = hr.work / "chain"
    kills = mid_write = random_kills = early_kills = cleaned_by_us = whole_job = 0
    previous_latest = 0
    cycle = 0
    while kills < KILLS:
        cycle += 1
        mode = "in-flight" if rng.random() < 0.5 else "random"
        at_launch = latest_step(run)
        time.sleep(0.02)  # file times of the previous launch's writes lie before `since`
        since = time.time()  # (this launch writes nothing before its ranks are up, ~0.4 s)
        launch = hr.launch(config, run, env=pause, tag=f"cycle-{cycle:02d}")
        if mode == "in-flight":
            # wait for a new checkpoint in flight: the first or second one after the resume
            target = at_launch + 3 * rng.choice([1, 2])
            deadline = time.monotonic() + CHAIN_TIMEOUT_S
            while launch.poll() is None and time.monotonic() < deadline:
                if [s for s in tmp_steps(run, since) if s >= target]:
                    break
                time.sleep(0.005)
            if launch.poll() is None:
                time.sleep(rng.choice([0.0, rng.uniform(0.0, PAUSE_S * 0.8)]))
        else:
            time.sleep(rng.uniform(0.1, 1.5))
        code = launch.poll()
        if code is not None:
            launch.finish(1)
            h.check(code == 0, f"cycle {cycle}: the relaunch exited {code} before it was "
                    f"killed (expected to resume and train):\n{launch.output_tail()}")
            raise h.TestFailure(f"cycle {cycle}: the run finished after {kills} kills; the "
                                f"config is too short for {KILLS} kills")
        pids = launch.rank_pids()
        in_flight = [s for s in tmp_steps(run, since) if s > latest_step(run)]
        killed_at = time.monotonic()
        if pids:
            victim = rng.choice(pids)
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if mode == "in-flight" and rng.random() < 0.5:
                time.sleep(0.02)
                launch.kill_all()  # the whole job at once, as when a node is lost
                whole_job += 1
            else:  # mpirun should notice and end the other rank
                code = launch.wait_gone(15.0)
                if code is None:
                    cleaned_by_us += 1
        else:  # the ranks are not started yet: kill the whole launch
            launch.kill_all()
            early_kills += 1
        kills += 1
        gone_s = time.monotonic() - killed_at
        h.check(not launch.session_pids(), f"cycle {cycle}: processes left after the kill")
        now_latest = latest_step(run)
        left_tmp = tmp_steps(run)
        landed_mid_write = bool(in_flight) and any(s in left_tmp and s > now_latest
                                                   for s in in_flight)
        mid_write += landed_mid_write
        random_kills += mode == "random"
        if h.latest_name(run) is not None:
            hr.check_valid(h.latest_dir(run))
        h.check(now_latest >= previous_latest,
                f"cycle {cycle}: latest moved back from step {previous_latest} to {now_latest}")
        previous_latest = now_latest
        h.log(f"cycle {cycle:2d}: {mode:9s} kill of {'a rank' if pids else 'mpirun (no ranks yet)'}"
              f" {killed_at - launch.started:.2f} s after launch (all gone {gone_s:.2f} s later)"
              f"; in flight {in_flight or '-'}"
              f"{' (landed mid-write)' if landed_mid_write else ''}; latest step {now_latest}, "
              f"metrics at {h.last_step(run)}")

    final = hr.launch(config, run, env=pause, tag="final")
    code = final.finish(120)
    h.check(code == 0, f"final relaunch exited {code}:\n{final.output_tail()}")
    rows = h.read_metrics(run)
    h.check_steps_increase(rows, "chain")
    h.compare_metrics(ref_rows, rows, "chain after kills")
    h.compare_checkpoints(h.latest_dir(ref), h.latest_dir(run), "chain after kills")
    hr.check_valid(h.latest_dir(run))
    total = time.monotonic() - started
    h.log(f"{cycle} cycles, {kills} SIGKILLs ({kills - random_kills} aimed at an in-flight "
          f"checkpoint, {random_kills} at random times, {early_kills} before the ranks "
          f"started, {whole_job} followed by SIGKILL of the whole job), {mid_write} landed "
          f"mid-write (a .tmp checkpoint left uncommitted); "
          f"mpirun left ranks running {cleaned_by_us} times; stale .tmp dirs at the end: "
          f"{len(h.temp_dirs(run))}; chain finished: metrics bit-identical, final shards "
          f"byte-identical; total {total:.1f} s")


if __name__ == "__main__":
    h.main(body, h.Harness("SIGKILL anywhere, resume, same result"))
