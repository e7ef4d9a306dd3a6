"""A full disk: the run stops at the first checkpoint it cannot save, in one line, and the
checkpoints before it stay whole; with space again, the same command resumes and ends
bit-identical to a run that never stopped. Real processes on a small tmpfs, mounted in a
private mount namespace (`unshare`): skipped where the machine does not allow that."""

import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(ROOT, "experiments", "train.py")
# configs/ae.py's default: a 64-32-64 autoencoder whose checkpoint (parameters and Adam's
# two moments) takes about 0.4 MiB; 1 MiB holds one checkpoint and not the second's margin.
ARGS = [
    "--config.progress_bar=false",
    "--config.num_epochs=2",
    "--config.checkpoint_every_steps=10",
    "--config.keep_checkpoints=3",
]


def _can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = "mkdir -p /tmp/aejax-probe && mount -t tmpfs -o size=64k tmpfs /tmp/aejax-probe"
    probed = subprocess.run(["unshare", "-rm", "sh", "-c", probe], capture_output=True)
    return probed.returncode == 0


pytestmark = pytest.mark.skipif(not _can_mount_tmpfs(), reason="cannot mount a tmpfs here")


def _digest(workdir, step: int) -> str:
    with open(os.path.join(workdir, "checkpoints", "digests.json")) as f:
        return json.load(f)[str(step)]


def test_a_full_disk_stops_the_run_in_one_line_and_the_rerun_is_bit_exact(tmp_path):
    mnt, out = tmp_path / "disk", tmp_path / "out"
    mnt.mkdir()
    out.mkdir()
    train = f"{sys.executable} {TRAIN} --workdir {mnt}/W {' '.join(ARGS)}"
    script = f"""
mount -t tmpfs -o size=1m tmpfs {mnt} || exit 99
{train} > {out}/stdout1 2> {out}/stderr1; echo $? > {out}/rc1
cp -r {mnt}/W {out}/after_failure
mount -o remount,size=16m {mnt}
{train} > {out}/stdout2 2> {out}/stderr2; echo $? > {out}/rc2
cp -r {mnt}/W {out}/after_rerun
"""
    done = subprocess.run(["unshare", "-rm", "bash", "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    read = lambda name: (out / name).read_text()

    # The first run: exit 1, one line naming the step and the checkpoint that is intact.
    assert read("rc1").strip() == "1", read("stderr1")[-2000:]
    lines = [line for line in read("stderr1").splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: checkpoint 20 not saved:"), lines
    assert "(10) are intact" in lines[0]
    kept = sorted(os.listdir(out / "after_failure" / "checkpoints"))
    assert kept == ["10", "digests.json"], kept

    # With space again, the same command resumes from step 10 and ends where a run that
    # never stopped ends, to the bit (the checksums of the final states agree).
    assert read("rc2").strip() == "0", read("stderr2")[-2000:]
    assert "resumed from checkpoint 10" in read("stdout2")
    reference = tmp_path / "reference"
    ref = subprocess.run(
        [sys.executable, TRAIN, "--workdir", str(reference), *ARGS], capture_output=True
    )
    assert ref.returncode == 0, ref.stderr[-2000:]
    assert _digest(out / "after_rerun", 44) == _digest(reference, 44)
