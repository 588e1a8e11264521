"""BBN Table 6 (supplementary C): BBN against two-model ensembles of its samplers' runs.

An ensemble averages its members' softmax probabilities on the test set; its parameter count
is the sum of its members' (BBN's shared trunk is its answer to that cost). The paper's
ensembles pair a uniform-sampler run with a class-balanced one and with a reversed one.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..engine import classification_report
from ..errors import DataError
from ..models.parts import inference_parameter_count
from .outputs import markdown_table, write_analysis
from .trained import device_for, load_runs, logits_on_test_set


def ensemble_logits(logits: list[torch.Tensor]) -> torch.Tensor:
    """The log of the members' mean softmax: its argmax and softmax are the ensemble's."""
    return torch.stack([member.float().softmax(1) for member in logits]).mean(0).log()


def analyze(run_a: str | Path, run_b: str | Path, output_dir: str | Path, pairs: list[list[str]] | None = None,
            singles: list[str] | None = None, data_root: str | None = None, device: str = "auto") -> list[Path]:
    """Write ``ensemble.{json,md}``: every run alone (``singles`` too, e.g. the BBN run) and
    the ensembles ``run_a + run_b`` and each of ``pairs``, with top-1 error, many/medium/few
    accuracy and parameter count."""
    pairs = [[str(run_a), str(run_b)], *(pairs or [])]
    targets = list(dict.fromkeys([*(Path(path) for pair in pairs for path in pair),
                                  *(Path(path) for path in singles or [])]))
    runs = {run.path: run for run in load_runs(targets, data_root=data_root)}
    chosen = device_for(device)
    predictions = {path: logits_on_test_set(run.experiment, chosen) for path, run in runs.items()}
    labels = {}
    for path, (_, test_targets) in predictions.items():
        if not torch.equal(test_targets, next(iter(predictions.values()))[1]):
            raise DataError(f"{path} was tested on other images than {targets[0]}; ensemble runs of one dataset")
        labels[path] = runs[path].label
    first = next(iter(runs.values()))
    data = first.config.data

    def entry(members: list[Path]) -> dict:
        logits = ensemble_logits([predictions[path][0] for path in members])
        report = classification_report(logits, predictions[members[0]][1], first.class_counts,
                                       data.many_threshold, data.few_threshold)
        return {"members": [str(path) for path in members],
                "parameters": sum(inference_parameter_count(runs[path].model) for path in members),
                **{key: report[key] for key in ("top1_error", "top1", "many", "medium", "few", "ece")}}

    entries = {labels[path]: entry([path]) for path in runs}
    for pair in pairs:
        members = [Path(path) for path in pair]
        entries[" + ".join(labels[path] for path in members)] = entry(members)
    table = ("Single runs and softmax-averaging ensembles on the test set (BBN Table 6: top-1 error)\n\n"
             + markdown_table(["model", "top-1 error", "many", "medium", "few", "parameters"],
                              [[name, e["top1_error"], e["many"], e["medium"], e["few"], f"{e['parameters']:,}"]
                               for name, e in entries.items()]))
    results = {"runs": {run.label: run.summary() for run in runs.values()}, "entries": entries}
    return write_analysis(output_dir, "ensemble", results, table)
