#!/usr/bin/env python3
# Why this file exists: BRIEF §5 "Checkpoint" promises that a stopped and resumed run is the
# same run. On 2 ranks, runs stopped by a real signal (LADDER_TEST_SIGNAL) in the middle of
# rung 0, exactly at the rung boundary, and twice in a row, then resumed with --resume auto,
# must log bit-identical metrics values and end with byte-identical shards compared with an
# uninterrupted run. A deliberately broken restore (LADDER_TEST_RESTORE_WITHOUT=data_cursor)
# must be caught, which shows the comparison can fail. The same holds for the diffusion UNet
# (stage 2, the same trainer) on the latents of the reference run's autoencoder, including its
# validation values (data.val_images, every 5 steps and at each rung's end), and for stage 1
# with the adversarial loss on (the discriminator's weights, moments and step count, and its
# BatchNorm running statistics, which a broken restore, LADDER_TEST_RESTORE_WITHOUT=buffers,
# must change).
import signal
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import checkpoint_harness as h

# 24 images: 12 per rank, 2 per rank per step, so an epoch is 6 steps and rung 0 (48 images,
# batch 4: steps 1-12) crosses an epoch boundary; rung 1 (32 images) is steps 13-20.
STEPS_RUNG0, STEPS_TOTAL = 12, 20


def stop_and_resume(hr, config, name, stops, resume_env=None):
    """Runs with each (rank, step, signal) of `stops` in turn, expecting exit 75 and a
    committed checkpoint at that step each time, then resumes to the end."""
    run = hr.work / name
    for rank, step, signum in stops:
        hook = {"LADDER_TEST_SIGNAL": f"{rank}:{step}:{int(signum)}"}
        hr.train(config, run, expect=h.EXIT_STOPPED, env=hook)
        h.check(h.latest_name(run) == f"step-{step:08d}",
                f"{name}: after {signal.Signals(signum).name} on rank {rank} after step {step}, "
                f"latest is {h.latest_name(run)!r}, expected 'step-{step:08d}'")
        hr.check_valid(h.latest_dir(run))
        state = h.manifest(h.latest_dir(run))["state"]
        h.check(state["step"] == step, f"{name}: stop checkpoint manifest step {state['step']}")
        rows = h.read_metrics(run)
        h.check(rows and rows[-1]["step"] == step,
                f"{name}: metrics end at step {rows[-1]['step'] if rows else None}, "
                f"expected {step} (the stop step)")
        h.check(not h.temp_dirs(run), f"{name}: temporary dirs left: {h.temp_dirs(run)}")
    hr.train(config, run, expect=0, env=resume_env)
    return run


def body(hr):
    hr.pack(24, levels="16,32", seed=1)
    config = hr.write_config(checkpoint={"every": 1000, "keep": 2})

    ref = hr.work / "A"
    _, seconds = hr.train(config, ref, expect=0)
    ref_rows = h.read_metrics(ref)
    h.check([r["step"] for r in ref_rows] == list(range(1, STEPS_TOTAL + 1)),
            f"A: logged steps {[r['step'] for r in ref_rows]}, expected 1..{STEPS_TOTAL}")
    h.check(h.latest_name(ref) == f"step-{STEPS_TOTAL:08d}", f"A: latest {h.latest_name(ref)!r}")
    hr.check_valid(ref)
    ref_final = h.latest_dir(ref)
    h.log(f"A: uninterrupted, {STEPS_TOTAL} steps in {seconds:.2f} s")

    cases = [
        ("B", [(1, 7, signal.SIGUSR1)], "mid rung 0 (second epoch)"),
        ("C", [(0, STEPS_RUNG0, signal.SIGTERM)], "at the last step of rung 0"),
        ("E", [(1, 3, signal.SIGINT), (0, STEPS_RUNG0 + 1, signal.SIGUSR1)],
         "twice: mid rung 0, then the first step of rung 1"),
    ]
    for name, stops, what in cases:
        run = stop_and_resume(hr, config, name, stops)
        h.compare_metrics(ref_rows, h.read_metrics(run), name)
        h.compare_checkpoints(ref_final, h.latest_dir(run), name)
        h.log(f"{name}: stopped {what} at steps {[s for _, s, _ in stops]}, resumed: metrics "
              f"bit-identical ({STEPS_TOTAL} lines), final shards byte-identical")

    # D: the resume ignores the saved data cursor. It must be detected.
    run = stop_and_resume(hr, config, "D", [(1, 7, signal.SIGUSR1)],
                          resume_env={"LADDER_TEST_RESTORE_WITHOUT": "data_cursor"})
    rows = h.read_metrics(run)
    h.compare_metrics(ref_rows[:7], rows[:7], "D before the stop")
    h.check(h.metrics_differ(ref_rows, rows),
            "D: a resume that ignores the data cursor logged metrics identical to the "
            "uninterrupted run; the comparison cannot tell a broken restore")
    h.check(not h.checkpoints_identical(ref_final, h.latest_dir(run)),
            "D: a resume that ignores the data cursor ended with shards byte-identical to the "
            "uninterrupted run's; the shard comparison cannot tell a broken restore")
    first = next(r["step"] for a, r in zip(ref_rows, rows)
                 if any(a.get(k) != r.get(k) for k in h.VALUE_KEYS))
    h.log(f"D: broken restore (data cursor ignored) detected: metrics differ from step {first}, "
          f"final shards differ")

    # Stage 1 with the PatchGAN loss from step 5 on (its discriminator in the same flat buffer,
    # its own AdamW group): stopped before the discriminator starts and after, resumed.
    adv_config = hr.write_config(
        "adv.ini", adversarial={"weight": 0.05, "start_step": 5, "layers": 1, "channels": 4},
        checkpoint={"every": 1000, "keep": 2})
    adv_ref = hr.work / "GA"
    hr.train(adv_config, adv_ref, expect=0)
    adv_rows = h.read_metrics(adv_ref)
    adv_keys = h.VALUE_KEYS + ("g_adv_loss", "d_loss", "d_real", "d_fake")
    h.check(all(r["d_loss"] == 0 for r in adv_rows[:5]) and all(r["d_loss"] > 0 for r in adv_rows[5:]),
            f"GA: d_loss {[r['d_loss'] for r in adv_rows]}: expected 0 through step 5, then positive")
    steps = h.manifest(h.latest_dir(adv_ref))["state"]["discriminator"]["optimizer_steps"]
    h.check(steps == STEPS_TOTAL - 5, f"GA: the discriminator made {steps} steps, expected {STEPS_TOTAL - 5}")
    for name, stops in [("GB", [(1, 3, signal.SIGUSR1)]), ("GC", [(0, 9, signal.SIGTERM)])]:
        run = stop_and_resume(hr, adv_config, name, stops)
        h.compare_metrics(adv_rows, h.read_metrics(run), name, keys=adv_keys)
        h.compare_checkpoints(h.latest_dir(adv_ref), h.latest_dir(run), name)
        h.log(f"{name}: adversarial run stopped at step {stops[0][1]}, resumed: metrics bit-identical, "
              f"final shards byte-identical")
    # GD: the resume forgets the discriminator's AdamW step count (its bias correction): caught.
    run = stop_and_resume(hr, adv_config, "GD", [(0, 9, signal.SIGTERM)],
                          resume_env={"LADDER_TEST_RESTORE_WITHOUT": "discriminator_steps"})
    h.check(h.metrics_differ(adv_rows, h.read_metrics(run), keys=adv_keys)
            and not h.checkpoints_identical(h.latest_dir(adv_ref), h.latest_dir(run)),
            "GD: a resume that restarts the discriminator's step count matched the uninterrupted run; "
            "the comparison cannot tell a broken restore of the discriminator")
    h.log("GD: broken restore (discriminator step count) detected: metrics and final shards differ")
    buffers = h.manifest(h.latest_dir(adv_ref)).get("buffers") or []
    tracked = [b["values"][0] for b in buffers if b["name"].endswith(".num_batches_tracked")]
    h.check(len(buffers) == 3 and tracked == [3 * (STEPS_TOTAL - 5)],
            f"GA: manifest buffers {[b['name'] for b in buffers]}, num_batches_tracked {tracked}: expected "
            f"one BatchNorm layer's three, tracked 3 × {STEPS_TOTAL - 5} (rank 0's: one micro-batch a step)")
    # GE: the resume leaves BatchNorm's running statistics at their reset values. Training never
    # reads them (metrics stay identical), but the final checkpoint's buffers must differ.
    run = stop_and_resume(hr, adv_config, "GE", [(1, 9, signal.SIGUSR1)],
                          resume_env={"LADDER_TEST_RESTORE_WITHOUT": "buffers"})
    h.compare_metrics(adv_rows, h.read_metrics(run), "GE", keys=adv_keys)
    h.check(not h.checkpoints_identical(h.latest_dir(adv_ref), h.latest_dir(run)),
            "GE: a resume that resets BatchNorm's running statistics ended with a checkpoint identical to the "
            "uninterrupted run's; the comparison cannot tell a broken restore of the buffers")
    h.log("GE: broken restore (BatchNorm running statistics reset) detected: metrics identical, buffers differ")

    # Stage 2: a small UNet on the latents of A's autoencoder, stopped mid rung 0 and at the
    # rung boundary, resumed: the same bit-identity (timesteps, noise and z keyed by
    # (seed, step, image), the data cursor, the optimizer state, the weights' moving average,
    # which the shards hold as /ema).
    latents = hr.work / "l.h5"
    encoded = subprocess.run([hr.ladder, "encode", "--checkpoint", str(ref_final), "--store",
                              str(hr.store), "--out", str(latents)], capture_output=True, text=True,
                             env=hr.env, timeout=120)
    h.check(encoded.returncode == 0, f"encode failed ({encoded.returncode}): {encoded.stderr}")
    unet_config = hr.write_config(
        "u.ini", model={"kind": "diffusion_unet", "in_channels": 2, "attention_levels": "0,1",
                        "head_channels": 8},
        run={"val_every": 5}, data={"store": str(latents), "val_images": 4},
        diffusion={"timesteps": 100, "snr_gamma": 5}, ema={"decay": 0.9},
        checkpoint={"every": 1000, "keep": 2})
    unet_ref = hr.work / "UA"
    hr.train(unet_config, unet_ref, expect=0)
    unet_rows = h.read_metrics(unet_ref)
    h.check([r["step"] for r in unet_rows] == list(range(1, STEPS_TOTAL + 1)),
            f"UA: logged steps {[r['step'] for r in unet_rows]}")
    validated = [r["step"] for r in unet_rows if "val_loss" in r]
    h.check(validated == [5, 10, 12, 15, 20], f"UA: validated at steps {validated}, expected 5, 10, 12 "
            "(the end of rung 0), 15, 20")
    keys = tuple(k for k in h.VALUE_KEYS if k not in ("rec_loss", "kl_loss"))
    for name, stops in [("UB", [(1, 7, signal.SIGUSR1)]), ("UC", [(0, STEPS_RUNG0, signal.SIGTERM)])]:
        run = stop_and_resume(hr, unet_config, name, stops)
        h.compare_metrics(unet_rows, h.read_metrics(run), name, keys=keys)
        h.compare_checkpoints(h.latest_dir(unet_ref), h.latest_dir(run), name)
        h.log(f"{name}: UNet stopped at step {stops[0][1]}, resumed: metrics bit-identical, "
              f"final shards byte-identical")


if __name__ == "__main__":
    h.main(body, h.Harness("stopped and resumed runs equal an uninterrupted run"))
