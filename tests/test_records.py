"""A run's record is never lost or overwritten: kills, Ctrl-C, a full disk, refusals, eval
reports, and the data choices behind a run (imbalance ratio, subset seed)."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from omegaconf import OmegaConf
from torchvision.transforms import v2

from conftest import reference_indices, tiny_config, write_tiny_npz
from longtail.checkpoints import load_checkpoint
from longtail.cli import main
from longtail.data import SOURCES, ImageSet, Pipeline, make_stream
from longtail.data.longtail import check_imbalance_ratio
from longtail.data.streams import LoaderSettings, _interrupt_after_receiving
from longtail.engine import build_experiment
from longtail.registry import ConfigError

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _config_file(tmp_path: Path, npz: Path, **sections) -> Path:
    train = {"threads": 1, **sections.pop("train", {})}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config(npz, train=train, **sections)))
    return path


def _epochs(run: Path) -> list[int]:
    """The epochs metrics.jsonl records; json.loads fails on any torn line."""
    return [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def _files(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


# --- killed and interrupted runs (real subprocesses) ----------------------------------------


def _start(config_file: Path, output_dir: Path, *overrides: str) -> subprocess.Popen:
    """``longtail train`` in its own process group, as a shell runs a foreground job: with Ctrl-C's
    SIGINT at its default even when pytest itself runs in the background (``&``), which ignores it."""
    return subprocess.Popen([sys.executable, "-m", "longtail.cli", "train", str(config_file),
                             f"output_dir={output_dir}", *overrides], env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_epochs(process: subprocess.Popen, run: Path, count: int) -> None:
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 300  # a safety net only: never reached by a healthy run
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= count):
        assert process.poll() is None, f"the run ended early: {process.communicate()}"
        assert time.monotonic() < deadline, f"the run did not finish epoch {count}"
        time.sleep(0.02)


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_sigkill_loses_no_saved_epoch(tiny_npz, tmp_path, capsys):
    config_file = _config_file(tmp_path, tiny_npz)
    process = _start(config_file, tmp_path, "train.epochs=40")
    run = tmp_path / "tiny"
    _wait_for_epochs(process, run, 2)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    logged = _epochs(run)
    assert logged == list(range(1, len(logged) + 1))
    saved = load_checkpoint(run / "checkpoints" / "last.pt")["epoch"]
    assert saved in (len(logged) - 1, len(logged))  # the kill may fall between a line and its checkpoint
    assert not (run / "eval.json").exists()

    assert main(["eval", str(run)]) == 0  # last.pt of an unfinished run: not the run's final report
    assert (run / f"eval_epoch_{saved:04d}.json").exists() and not (run / "eval.json").exists()

    stale = run / "checkpoints" / f"epoch_{saved + 1:04d}.pt.tmp"  # as a kill mid-write leaves it
    stale.write_bytes(b"the first half of a checkpoint")
    assert main(["train", str(run), "--resume", f"train.epochs={saved + 1}"]) == 0
    assert not stale.exists() and f"removed {stale}" in capsys.readouterr().out
    assert _epochs(run) == list(range(1, saved + 2))
    assert json.loads((run / "eval.json").read_text())["num_test"] == 40

    # train.log keeps what both processes printed, the killed one's epochs included, each headed by its command
    log = (run / "train.log").read_text().splitlines()
    resumed = next(i for i, line in enumerate(log) if line.startswith(f"resumed after epoch {saved}: longtail "))
    assert log[0].startswith(f"longtail train {config_file} output_dir={tmp_path} train.epochs=40 (commit ")
    printed = [line.split()[1] for line in log[1:resumed]]
    assert printed == [f"{epoch}/40" for epoch in logged][:len(printed)] and len(printed) >= len(logged) - 1
    removed = [line for line in log[resumed + 1:] if line.startswith("removed ")]  # the kill may leave more
    assert f"removed {stale}, left half-written when an earlier run was stopped" in removed
    rest = log[resumed + 1 + len(removed):]
    assert rest[0].startswith(f"epoch {saved + 1}/{saved + 1} loss ")
    assert rest[1] == f"final epoch ({saved + 1}) on the test set:" and len(rest) == 5  # the report's 4 lines


def test_ctrl_c_exits_130_with_one_line_and_no_workers_left(tiny_npz, tmp_path):
    # resize_center_crop has no batched form, so training images come from DataLoader workers
    config = _config_file(tmp_path, tiny_npz, method={"transform": "resize_center_crop"})
    process = _start(config, tmp_path, "train.epochs=40", "train.num_workers=1")
    run = tmp_path / "tiny"
    _wait_for_epochs(process, run, 1)
    workers: list[int] = []
    # Epoch 1's checkpoints written (epoch_0001.pt comes last) and the persistent worker alive:
    # the interrupt falls in a later epoch's steps.
    while not (workers and (run / "checkpoints" / "epoch_0001.pt").exists()) and process.poll() is None:
        workers = _children(process.pid)
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, stderr = process.communicate()

    assert process.returncode == 130
    saved = load_checkpoint(run / "checkpoints" / "last.pt")["epoch"]
    assert stderr.splitlines() == [f"longtail: interrupted in epoch {saved + 1}; epochs 1..{saved} are saved; "
                                   f"continue with `longtail train {run} --resume`"]
    assert workers and not any(_alive(pid) for pid in workers)
    assert _epochs(run)[:saved] == list(range(1, saved + 1))
    assert main(["train", str(run), "--resume", f"train.epochs={saved + 1}", "train.num_workers=0"]) == 0
    assert _epochs(run) == list(range(1, saved + 2))


def test_ctrl_c_while_a_batch_is_received_is_raised_once_the_batch_is_in():
    finished = False
    with pytest.raises(KeyboardInterrupt):
        with _interrupt_after_receiving():
            os.kill(os.getpid(), signal.SIGINT)
            finished = True
    assert finished and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_while_a_batch_is_received_is_raised_at_once():
    reached: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        with _interrupt_after_receiving():
            os.kill(os.getpid(), signal.SIGINT)
            reached.append("after the first")
            os.kill(os.getpid(), signal.SIGINT)
            reached.append("after the second")
    assert reached == ["after the first"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_callers_own_ctrl_c_handler_is_left_alone():
    calls: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _: calls.append(signum))
    try:
        with _interrupt_after_receiving():
            os.kill(os.getpid(), signal.SIGINT)
        assert calls == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_dataloader_workers_leave_ctrl_c_to_the_training_process():
    images = ImageSet(images=np.zeros((8, 8, 8, 3), dtype=np.uint8), targets=np.arange(8) % 2)
    stream = make_stream(images, None, 2, [Pipeline(v2.PILToTensor())], drop_last=False,
                         loader=LoaderSettings(num_workers=1, prefetch_factor=1))
    others = set(_children(os.getpid()))  # e.g. workers of earlier tests' loaders not yet collected
    batches = iter(stream)
    next(batches)
    [worker] = set(_children(os.getpid())) - others
    os.kill(worker, signal.SIGINT)  # a worker that obeyed would quit and fail the next batches
    assert sum(len(batch.targets) for batch in batches) == 6
    assert _alive(worker)


# --- refusals --------------------------------------------------------------------------------


def test_resume_without_a_checkpoint_changes_nothing(tiny_npz, tmp_path, capsys):
    run = tmp_path / "tiny"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(tiny_config(tiny_npz)))
    (run / "metrics.jsonl").write_text('{"epoch": 1, "loss": 1.5}\n{"epoch": 2, "loss": 1.2}\n')
    (run / "eval.json").write_text('{"top1": 50.0}\n')
    (run / "command.txt").write_text("longtail train tiny.yaml\n")
    before = _files(run)
    assert main(["train", str(run), "--resume"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "cannot resume" in error and "checkpoints/last.pt" in error
    assert "metrics.jsonl (2 epochs)" in error and "eval.json" in error and f"delete {run}" in error
    assert _files(run) == before


@pytest.mark.parametrize("record", ["config.yaml", "metrics.jsonl", "eval.json"])
def test_a_new_run_is_refused_where_a_record_lies(record, tiny_npz, tmp_path, capsys):
    run = tmp_path / "tiny"
    run.mkdir()
    (run / record).write_text("{}\n")
    assert main(["train", str(_config_file(tmp_path, tiny_npz)), f"output_dir={tmp_path}"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"{run} holds {record}" in error and f"delete {run}" in error
    assert _files(run) == {record: b"{}\n"}


def test_resume_of_a_run_never_started_is_refused(tiny_npz, tmp_path, capsys):
    assert main(["train", str(_config_file(tmp_path, tiny_npz)), "--resume", f"output_dir={tmp_path}"]) == 2
    assert "does not exist; train without --resume" in capsys.readouterr().err
    assert not (tmp_path / "tiny").exists()


def test_full_disk_names_the_file_and_keeps_the_previous_checkpoint(tiny_npz, tmp_path, capsys, monkeypatch):
    save = torch.save

    def fill_the_disk(state, handle):
        if state["epoch"] == 2:
            handle.write(b"part of a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        save(state, handle)

    monkeypatch.setattr(torch, "save", fill_the_disk)
    config = _config_file(tmp_path, tiny_npz, train={"epochs": 3})
    assert main(["train", str(config), f"output_dir={tmp_path}"]) == 2
    run = tmp_path / "tiny"
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "the disk is full" in error and str(run / "checkpoints" / "last.pt") in error
    assert "checkpoints/last.pt holds epochs 1..1" in error and f"`longtail train {run} --resume`" in error
    assert load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 1
    assert not list(run.rglob("*.tmp"))

    monkeypatch.setattr(torch, "save", save)  # space freed
    assert main(["train", str(run), "--resume"]) == 0
    assert _epochs(run) == [1, 2, 3]


# --- eval reports ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """Two finished runs: CE on 4 classes (2 epochs, each kept) and BBN on 3 classes (1 epoch)."""
    root = tmp_path_factory.mktemp("runs")
    four = write_tiny_npz(root / "four.npz", per_class=60, test_per_class=10)
    arrays = dict(np.load(four))
    three = root / "three.npz"
    np.savez(three, **{f"x_{s}": arrays[f"x_{s}"][arrays[f"y_{s}"] < 3] for s in ("train", "test")},
             **{f"y_{s}": arrays[f"y_{s}"][arrays[f"y_{s}"] < 3] for s in ("train", "test")})
    runs = {}
    for name, npz, extra in (("ce", four, {"train": {"epochs": 2, "threads": 1}}),
                             ("bbn", three, {"train": {"epochs": 1, "threads": 1},
                                             "model": {"name": "bbn_resnet20"}, "method": {"name": "bbn"}})):
        config = root / f"{name}.yaml"
        config.write_text(yaml.safe_dump(tiny_config(npz, name=name, output_dir=str(root), **extra)))
        assert main(["train", str(config)]) == 0
        runs[name] = root / name
    return runs


def _copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / run.name))


def test_eval_of_other_checkpoints_never_touches_eval_json(trained, tmp_path, capsys):
    run = _copy(trained["ce"], tmp_path)
    final = (run / "eval.json").read_bytes()
    for epoch in (1, 2):
        assert main(["eval", str(run / "checkpoints" / f"epoch_{epoch:04d}.pt")]) == 0
        assert f"written to {run / f'eval_epoch_{epoch:04d}.json'}" in capsys.readouterr().out
    assert main(["eval", str(run / "checkpoints" / "epoch_0001.pt"), "--tau-norm", "1"]) == 0
    assert (run / "eval_epoch_0001_taunorm1.json").exists()
    assert (run / "eval.json").read_bytes() == final
    # epoch_0002.pt is the final state: its report is the run's, recomputed
    assert json.loads((run / "eval_epoch_0002.json").read_text()) == json.loads(final)

    assert main(["eval", str(run)]) == 0  # the final checkpoint: the same report, left as it was
    assert "left as it was" in capsys.readouterr().out
    assert (run / "eval.json").read_bytes() == final
    assert main(["eval", str(run / "checkpoints" / "epoch_0001.pt"), "--output", str(tmp_path / "e1.json")]) == 0
    assert json.loads((tmp_path / "e1.json").read_text()) == json.loads((run / "eval_epoch_0001.json").read_text())


def test_eval_refuses_to_replace_a_different_report(trained, tmp_path, capsys):
    run = _copy(trained["ce"], tmp_path)
    report = json.loads((run / "eval.json").read_text())
    other = json.dumps({**report, "top1": report["top1"] / 2})
    for target in (run / "eval.json", tmp_path / "mine.json"):
        target.write_text(other)
        extra = [] if target.name == "eval.json" else ["--output", str(target)]
        assert main(["eval", str(run), *extra]) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and f"{target} already holds a different report" in error
        assert "--output" in error and target.read_text() == other


def test_variant_of_an_epoch_checkpoint_keeps_its_suffix(trained, tmp_path):
    run = _copy(trained["bbn"], tmp_path)
    assert main(["eval", str(run / "checkpoints" / "epoch_0001.pt"), "--branch", "conventional"]) == 0
    assert (run / "eval_epoch_0001_conventional.json").exists()
    assert main(["eval", str(run), "--branch", "conventional"]) == 0  # last.pt of the finished run
    assert (run / "eval_conventional.json").exists()


def test_eval_refuses_a_checkpoint_of_another_run(trained, tmp_path, capsys):
    run = _copy(trained["ce"], tmp_path)
    foreign = run / "checkpoints" / "foreign.pt"
    shutil.copy(trained["bbn"] / "checkpoints" / "last.pt", foreign)
    before = _files(run)
    assert main(["eval", str(foreign)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(foreign) in error and str(run / "config.yaml") in error
    for side_by_side in ("model bbn_resnet20 vs resnet20", "method bbn vs standard", "classes 3 vs 4"):
        assert side_by_side in error
    assert _files(run) == before


# --- the data behind a run -------------------------------------------------------------------


@pytest.mark.parametrize("ratio", ["0", "0.5", "-3", "nan", "145", "1e9", "inf"])
def test_datasets_refuses_ratios_the_data_cannot_give(ratio, capsys):
    # digits keeps 174 - 30 = 144 training images in its smallest class (8): IR 144 leaves 1 there
    assert main(["datasets", "digits", "--imbalance-ratio", ratio]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "144" in error and "the largest" in error


def test_datasets_accepts_the_largest_ratio(capsys):
    assert main(["datasets", "digits", "--imbalance-ratio", "144"]) == 0
    counts = [int(line.split()[2]) for line in capsys.readouterr().out.splitlines()[:10]]
    assert counts[0] == 144 and counts[-1] == 1


@pytest.mark.parametrize("ratio", ["0", "1e9"])
def test_train_refuses_the_same_ratios(ratio, tiny_npz, tmp_path, capsys):
    config = _config_file(tmp_path, tiny_npz)
    assert main(["train", str(config), f"output_dir={tmp_path}", f"data.imbalance_ratio={ratio}"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "largest" in error and re.search(r"\b60\b", error)


def test_largest_ratio_is_exact_where_the_formula_rounds_down():
    # 49 * (1 / 49) is 0.9999999999999999 in floating point, so IR 49 leaves the last class empty
    counts = np.full(10, 49)
    with pytest.raises(ConfigError, match=r"allows is 48\.99999999999999 "):
        check_imbalance_ratio(counts, 49)
    assert check_imbalance_ratio(counts, 48.99999999999999)[-1] == 1
    assert check_imbalance_ratio(np.full(4, 10), 10, "step") == [10, 10, 1, 1]
    with pytest.raises(ConfigError, match=r"allows is 10 \(step"):
        check_imbalance_ratio(np.full(4, 10), 10.5, "step")


def _subset(configure, *overrides):
    return build_experiment(configure(*overrides)).train


def test_subset_seed_chooses_the_images_and_seed_does_not(configure):
    papers = _subset(configure)  # tiny recipe: 24 images a class, IR 4
    source = SOURCES.build(OmegaConf.to_container(configure().data.source))
    expected = source.train.subset(reference_indices(source.train.targets, 4, 4))
    np.testing.assert_array_equal(papers.images, expected.images)  # subset_seed 0: the papers' subset
    np.testing.assert_array_equal(_subset(configure, "seed=5").images, papers.images)
    other = _subset(configure, "data.subset_seed=1")
    assert np.bincount(other.targets).tolist() == np.bincount(papers.targets).tolist() == [24, 15, 9, 6]
    assert not np.array_equal(other.images, papers.images)


def test_datasets_shows_the_subset_seed(capsys):
    outputs = []
    for seed in ("0", "3"):
        assert main(["datasets", "digits", "--imbalance-ratio", "10", "--subset-seed", seed]) == 0
        outputs.append(capsys.readouterr().out.splitlines())
    assert re.search(r"imbalance ratio 10 \(exp\), subset seed 3$", outputs[1][-1])
    assert outputs[0][:-1] == outputs[1][:-1]  # the same counts per class
