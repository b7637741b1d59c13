# Why this file exists: the helpers shared by the checkpoint reliability tests
# (resume_identical.py, kill_anywhere.py, preemption.py): a temporary work directory with a
# synthetic store and a small INI, launching `ladder train` under mpirun in its own session,
# finding and killing its rank processes, reading metrics.jsonl, and comparing the final
# checkpoints of two runs byte for byte. Python 3 standard library only.
import argparse
import filecmp
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXIT_STOPPED = 75  # train: stopped by a signal after committing a checkpoint

# metrics.jsonl fields that are pure functions of the training state (no timings)
VALUE_KEYS = ("step", "stage", "resolution", "images_seen", "loss", "rec_loss", "kl_loss",
              "lr", "grad_norm", "skipped_steps")

BASE_CONFIG = {
    "run": {"seed": 3, "device": "cpu", "log_every": 1, "sample_every": 0},
    "model": {"channels": "8,16", "res_blocks": 1, "norm_groups": 4, "latent_channels": 2},
    "data": {"flip": "true"},
    "train": {"batch": 4, "micro_batch": 2, "lr": "1e-3"},
    "stages": {"resolutions": "16,32", "images": "48,32"},
    "checkpoint": {"every": 1000, "keep": 2},
}


class TestFailure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise TestFailure(message)


def log(message):
    print(message, flush=True)


class Launch:
    """One `mpirun ... ladder train` in its own session (session id = mpirun's pid)."""

    def __init__(self, harness, run_dir, argv, env, log_path):
        self.harness = harness
        self.run_dir = Path(run_dir)
        self.log_path = log_path
        self.started = time.monotonic()
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.pid = self.proc.pid

    def poll(self):
        return self.proc.poll()

    def wait(self, timeout):
        """Exit code, or None if it is still running after `timeout` seconds."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def rank_pids(self):
        return [pid for pid, info in _processes().items() if info["ppid"] == self.pid]

    def session_pids(self):
        """Every live (non-zombie) process of this launch, mpirun's children included, even
        after they were re-parented."""
        return [pid for pid, info in _processes().items()
                if info["sid"] == self.pid and info["state"] != "Z"]

    def wait_for_ranks(self, count, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.rank_pids()
            if len(pids) >= count:
                return sorted(pids)
            check(self.poll() is None, f"mpirun exited ({self.poll()}) before {count} ranks "
                  f"started:\n{self.output_tail()}")
            time.sleep(0.01)
        raise TestFailure(f"{count} rank processes did not appear within {timeout} s")

    def kill_all(self, timeout=15.0):
        """SIGKILL everything of this launch and wait until no process of it is left."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self.session_pids()
            if self.proc.poll() is None and self.pid not in pids:
                pids.append(self.pid)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.poll()  # reaps mpirun once it died
            check(time.monotonic() < deadline,
                  f"processes {pids} of mpirun {self.pid} still alive {timeout} s after SIGKILL")
            time.sleep(0.01)
        self.proc.wait()
        self._log.close()

    def wait_gone(self, timeout):
        """After a rank was killed: mpirun should notice and end its other ranks. Returns the
        exit code, or None when we had to kill the rest ourselves."""
        code = self.wait(timeout)
        deadline = time.monotonic() + 5.0
        while code is not None and self.session_pids() and time.monotonic() < deadline:
            time.sleep(0.01)
        left = self.session_pids()
        if code is None or left:
            self.kill_all()
            return None
        self._log.close()
        return code

    def finish(self, timeout):
        code = self.wait(timeout)
        if code is None:
            self.kill_all()
            raise TestFailure(f"run {self.run_dir} did not end within {timeout} s:\n"
                              f"{self.output_tail()}")
        self._log.close()
        return code

    def output_tail(self, lines=25):
        try:
            self._log.flush()
        except ValueError:
            pass
        text = Path(self.log_path).read_text(errors="replace").splitlines()
        return "\n".join("    | " + line for line in text[-lines:])


def _processes():
    """pid -> {ppid, sid, state} from /proc/*/stat."""
    result = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) "
        result[int(entry)] = {"state": fields[0], "ppid": int(fields[1]), "sid": int(fields[3])}
    return result


class Harness:
    def __init__(self, description):
        parser = argparse.ArgumentParser(description=description)
        parser.add_argument("--ladder", required=True, help="the ladder binary")
        parser.add_argument("--mpiexec", default="mpiexec")
        parser.add_argument("--keep", action="store_true", help="keep the work directory")
        parser.add_argument("--seed", type=int, default=None,
                            help="random seed (tests that use one)")
        self.args = parser.parse_args()
        self.ladder = str(Path(self.args.ladder).resolve())
        self.mpiexec = self.args.mpiexec
        self.work = Path(tempfile.mkdtemp(prefix="ladder-ckpt-"))
        self.env = dict(os.environ)
        self.env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        self.env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        self.env.setdefault("OMP_NUM_THREADS", "1")
        for name in [n for n in self.env if n.startswith("LADDER_TEST_")]:
            del self.env[name]  # hooks only where a test sets them
        self.launches = []
        self.store = None

    # ---- setup ----------------------------------------------------------------------------
    def pack(self, images, levels="16,32", seed=1, name="s.h5"):
        path = self.work / name
        result = subprocess.run([self.ladder, "pack", "--synthetic", str(images), "--out",
                                 str(path), "--levels", levels, "--seed", str(seed)],
                                capture_output=True, text=True, env=self.env)
        check(result.returncode == 0, f"pack failed ({result.returncode}): {result.stderr}")
        self.store = path
        return path

    def write_config(self, name="c.ini", **overrides):
        """overrides: section={key: value}, merged into BASE_CONFIG."""
        sections = {s: dict(keys) for s, keys in BASE_CONFIG.items()}
        sections["data"]["store"] = str(self.store)
        for section, keys in overrides.items():
            sections.setdefault(section, {}).update(keys)
        text = "".join(f"[{s}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()) + "\n"
                       for s, keys in sections.items())
        path = self.work / name
        path.write_text(text)
        return path

    # ---- running ---------------------------------------------------------------------------
    def train_argv(self, config, run_dir, ranks=2, resume="auto", flags=()):
        argv = [self.mpiexec, "--oversubscribe", "--bind-to", "none", "-np", str(ranks),
                self.ladder, "train", "--config", str(config), "--run.dir", str(run_dir)]
        argv += list(flags)
        if resume:
            argv += ["--resume", resume]
        return argv

    def launch(self, config, run_dir, ranks=2, resume="auto", flags=(), env=None, tag=None):
        run_dir = Path(run_dir)
        env_all = dict(self.env)
        env_all.update(env or {})
        tag = tag or f"{run_dir.name}-{len(self.launches)}"
        launch = Launch(self, run_dir, self.train_argv(config, run_dir, ranks, resume, flags),
                        env_all, self.work / f"{tag}.log")
        self.launches.append(launch)
        return launch

    def train(self, config, run_dir, expect=0, timeout=120, **kwargs):
        """Runs to the end and checks the exit code; returns (exit code, seconds)."""
        launch = self.launch(config, run_dir, **kwargs)
        code = launch.finish(timeout)
        seconds = time.monotonic() - launch.started
        check(expect is None or code == expect,
              f"train of {run_dir} exited {code}, expected {expect}:\n{launch.output_tail()}")
        return code, seconds

    def inspect(self, path):
        """(exit code, last line of stdout, whole output) of `ladder inspect PATH`."""
        result = subprocess.run([self.ladder, "inspect", str(path)], capture_output=True,
                                text=True, env=self.env, timeout=60)
        lines = result.stdout.strip().splitlines()
        return result.returncode, (lines[-1] if lines else ""), result.stdout + result.stderr

    def check_valid(self, path):
        code, last, output = self.inspect(path)
        check(code == 0 and last.strip() == "valid",
              f"inspect {path}: exit {code}, last line '{last}' (expected 0 and 'valid'); "
              f"output:\n" + "\n".join("    | " + l for l in output.splitlines()[-30:]))

    # ---- cleanup ---------------------------------------------------------------------------
    def cleanup(self, failed):
        for launch in self.launches:
            if launch.proc.poll() is None or launch.session_pids():
                launch.kill_all()
        if self.args.keep or failed:
            log(f"work directory kept: {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)


# ---- run directory helpers ---------------------------------------------------------------
def read_metrics(run_dir, tolerate_partial=False):
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    lines = path.read_text().split("\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if tolerate_partial and number == len(lines):  # being written right now
                break
            raise TestFailure(f"{path}:{number}: not JSON: {line[:200]!r}")
    return rows


def last_step(run_dir):
    rows = read_metrics(run_dir, tolerate_partial=True)
    return rows[-1]["step"] if rows else 0


def latest_name(run_dir):
    path = Path(run_dir) / "checkpoints" / "latest"
    if not path.exists():
        return None
    return path.read_text().strip()


def step_of(name):
    check(name.startswith("step-") and len(name) == 13 and name[5:].isdigit(),
          f"unexpected checkpoint name '{name}'")
    return int(name[5:])


def latest_dir(run_dir):
    name = latest_name(run_dir)
    check(name is not None, f"{run_dir}/checkpoints/latest does not exist")
    path = Path(run_dir) / "checkpoints" / name
    check(path.is_dir(), f"{run_dir}/checkpoints/latest names '{name}', which does not exist")
    return path


def temp_dirs(run_dir):
    directory = Path(run_dir) / "checkpoints"
    try:
        return sorted(p.name for p in directory.iterdir() if p.name.startswith(".tmp-"))
    except FileNotFoundError:
        return []


def manifest(step_dir):
    return json.loads((Path(step_dir) / "manifest.json").read_text())


def check_steps_increase(rows, label):
    steps = [r["step"] for r in rows]
    for a, b in zip(steps, steps[1:]):
        check(b > a, f"{label}: metrics steps do not strictly increase ({a} then {b}); "
              f"steps: {steps}")


def compare_metrics(expected_rows, actual_rows, label, keys=VALUE_KEYS):
    """Bit-identical parsed values for `keys`, same number of lines; raises with the first
    difference."""
    check(len(expected_rows) == len(actual_rows),
          f"{label}: {len(actual_rows)} metrics lines, reference has {len(expected_rows)} "
          f"(steps {[r['step'] for r in actual_rows]} vs {[r['step'] for r in expected_rows]})")
    for line, (a, b) in enumerate(zip(expected_rows, actual_rows), 1):
        # validation fields (val_*) appear on the steps that validated: on the same ones
        validation = sorted(k for k in set(a) | set(b) if k.startswith("val_"))
        for key in list(keys) + validation:
            check(key in a and key in b, f"{label}: line {line} (step {a.get('step')}) lacks '{key}'")
            check(a[key] == b[key], f"{label}: line {line} (step {a['step']}) differs in "
                  f"'{key}': reference {a[key]!r}, this run {b[key]!r}")


def metrics_differ(expected_rows, actual_rows, keys=VALUE_KEYS):
    if len(expected_rows) != len(actual_rows):
        return True
    return any(a.get(k) != b.get(k) for a, b in zip(expected_rows, actual_rows) for k in keys)


def checkpoints_identical(expected_dir, actual_dir):
    try:
        compare_checkpoints(expected_dir, actual_dir, "")
        return True
    except TestFailure:
        return False


def compare_checkpoints(expected_dir, actual_dir, label):
    """Same shard file names, byte-identical shard files, equal manifest `state`, step and
    `buffers` (BatchNorm's running statistics, exact: the values are the floats' shortest
    round-trip decimals)."""
    expected_dir, actual_dir = Path(expected_dir), Path(actual_dir)
    shards_a = sorted(p.name for p in expected_dir.glob("shard-*.h5"))
    shards_b = sorted(p.name for p in actual_dir.glob("shard-*.h5"))
    check(shards_a, f"{label}: no shards in {expected_dir}")
    check(shards_a == shards_b, f"{label}: shard files {shards_b} vs reference {shards_a}")
    for name in shards_a:
        check(filecmp.cmp(expected_dir / name, actual_dir / name, shallow=False),
              f"{label}: {actual_dir / name} differs from the reference {expected_dir / name}")
    state_a, state_b = manifest(expected_dir).get("state"), manifest(actual_dir).get("state")
    check(state_a is not None and state_a == state_b,
          f"{label}: manifest state {state_b} vs reference {state_a}")
    buffers_a, buffers_b = manifest(expected_dir).get("buffers"), manifest(actual_dir).get("buffers")
    check(buffers_a == buffers_b,
          f"{label}: manifest buffers differ from the reference's "
          f"({[b['name'] for b in buffers_b or []]} vs {[b['name'] for b in buffers_a or []]})")


def main(body, harness):
    """Runs body(harness); prints PASS or FAIL with the message; exit code 0 or 1."""
    started = time.monotonic()
    failed = True

    def interrupted(signum, _frame):  # CTest's timeout, Ctrl-C: still clean up the launches
        raise TestFailure(f"interrupted by {signal.Signals(signum).name}")

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, interrupted)
    try:
        body(harness)
        failed = False
    except TestFailure as error:
        log(f"FAIL: {error}")
    except Exception:
        import traceback
        traceback.print_exc()
        log("FAIL: the test itself raised (see above)")
    finally:
        harness.cleanup(failed)
    log(f"{'FAIL' if failed else 'PASS'} in {time.monotonic() - started:.1f} s")
    sys.exit(1 if failed else 0)
