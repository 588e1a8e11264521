"""The ``longtail`` command: train, eval, study, datasets, demo, plot, record, results-table, runs
and analyze."""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from .config import load_config, ratio_text
from .data import SOURCES, longtailed_indices, shot_groups
from .errors import ConfigError, DataError, NotFound, UserError

# The methods `longtail demo` compares, as overrides of the embedded digits preset.
DEMO_METHODS = {
    "CE": [],
    "Balanced Softmax": ["method.loss=balanced_softmax"],
    "BBN": ["model.name=bbn_resnet32", "method.name=bbn"],
    "PaCo": ["model.name=moco_resnet32", "model.dim=32", "model.queue_size=256", "method.name=paco",
             "method.alpha=0.05", "method.temperature=0.1", "method.query_transform=crop_flip",
             "method.key_transform=crop_flip"],
}


def run_name(config_file: Path, imbalance_ratio: float | None) -> str:
    """A run named after its config file and ratio: ``cifar100_lt/bbn_ir50`` for
    ``configs/cifar100_lt/bbn.yaml data.imbalance_ratio=50``."""
    parts = config_file.with_suffix("").parts
    name = "/".join(parts[parts.index("configs") + 1 :] if "configs" in parts else parts[-1:])
    return name if imbalance_ratio is None else f"{name}_ir{ratio_text(imbalance_ratio)}"


def _train(args: argparse.Namespace) -> None:
    from .engine import Trainer
    from .engine.distributed import teardown
    from .engine.records import check_run_dir

    target = Path(args.config)
    resume_dir = target if target.is_dir() else None
    if resume_dir is not None:  # `longtail train RUN_DIR --resume` continues that run
        check_run_dir(resume_dir, args.resume)
        config = load_config(resume_dir / "config.yaml", args.overrides)
        run_dir = resume_dir
    else:
        config = load_config(target, args.overrides)
        if config.name == "run":
            config.name = run_name(target, config.data.imbalance_ratio)
        run_dir = Path(config.output_dir) / config.name
    if args.data_root:
        config.data.root = args.data_root
    Trainer(config, run_dir, resume=args.resume).fit()
    teardown()  # under torchrun: leave the process group before exiting


def _eval(args: argparse.Namespace) -> None:
    import torch

    from .checkpoints import checkpoint_file, load_checkpoint, load_weights, trained_by
    from .engine import build_experiment, classification_report, format_report, predict
    from .engine.distributed import setup
    from .engine.records import check_checkpoint_of_run, report_path, run_directory, write_report
    from .models.pretrained import is_results_folder

    if args.precision == "fp16" and not torch.cuda.is_available():
        raise ConfigError("--precision fp16 needs CUDA; use bf16 or fp32 on the CPU")
    target = Path(args.target)
    if is_results_folder(target):
        return _eval_recorded(target, args)
    checkpoint = checkpoint_file(target)
    if not checkpoint.exists():
        raise NotFound(f"no checkpoint at {checkpoint}; give a run directory or a .pt file")
    state = load_checkpoint(checkpoint)
    config = OmegaConf.merge(load_config(), OmegaConf.create(state["config"]))
    if args.data_root:
        config.data.root = args.data_root
    experiment = build_experiment(config)
    run = check_checkpoint_of_run(checkpoint, config, experiment.source.num_classes, args.data_root)
    load_weights(experiment.method, state["method"], f"{checkpoint} ({trained_by(state['config'])})",
                 f"the model its config builds ({trained_by(config)})",
                 "It was saved by another version of longtail: evaluate it with the commit in the "
                 "run's commit.txt")
    if args.tau_norm is not None or args.logit_adjust is not None:
        from .models import apply_posthoc

        apply_posthoc(experiment.method.model, experiment.class_counts, args.tau_norm,
                      args.logit_adjust)
    runtime = setup(config.train.device)
    _note_emulated_bf16(args.precision or config.train.precision, runtime.device)
    method = experiment.method.to(runtime.device)
    options = {"branch": args.branch} if args.branch else {}
    other_precision = args.precision not in (None, config.train.precision)
    logits, targets = predict(method, experiment.test_stream(), runtime.device,
                              args.precision or config.train.precision, config.train.channels_last, **options)
    report = classification_report(logits, targets, experiment.class_counts,
                                   config.data.many_threshold, config.data.few_threshold)
    run_dir = run_directory(checkpoint)
    variant = "".join([
        f"_{args.branch}" if args.branch else "",
        f"_taunorm{args.tau_norm:g}" if args.tau_norm is not None else "",
        f"_logitadjust{args.logit_adjust:g}" if args.logit_adjust is not None else "",
        f"_{args.precision}" if other_precision else "",
    ])
    print(format_report(report, f"{run_dir} after epoch {state['epoch']}"
                                + (f" ({variant[1:]})" if variant else "") + ":"))
    out = report_path(checkpoint, state["epoch"], run, variant, args.output)
    written = write_report(out, report)
    print(f"written to {out}" if written else f"the same report as {out}, left as it was")


def _note_emulated_bf16(precision: str, device) -> None:
    """Say, before the wait, that ``device`` can only emulate the bf16 it is to compute in."""
    from .engine.experiment import native_bf16

    if precision == "bf16" and not native_bf16(device):
        print(f"longtail: note: this {device.type} has no native bf16, so computing in bf16 is emulated, "
              "about 10 times slower than fp32 (--precision fp32 computes in fp32)", file=sys.stderr)


def _eval_recorded(folder: Path, args: argparse.Namespace) -> None:
    """A results folder: recompute its eval.json from the shipped weights and compare."""
    from .analysis.results import processors_note, recompute_eval
    from .engine import format_report
    from .engine.records import write_report

    if args.branch or args.tau_norm is not None or args.logit_adjust is not None:
        raise ConfigError(f"{folder} is a results folder; --branch, --tau-norm and --logit-adjust need "
                         "the run directory with its checkpoints/")
    from .engine.distributed import setup

    trained = load_config(folder / "config.yaml").train
    trained_in = trained.precision
    _note_emulated_bf16(args.precision or trained_in, setup(trained.device).device)
    if args.precision not in (None, trained_in):  # another computation: compared, never checked
        report, recorded, _ = recompute_eval(folder, args.data_root, args.precision)
        print(format_report(report, f"{folder}, from its weights in {args.precision} "
                                    f"(trained and recorded in {trained_in}):"))
        print(f"top-1 {report['top1'] - recorded['top1']:+.2f} points against {folder / 'eval.json'}")
        if args.output:
            written = write_report(Path(args.output), report)
            print(f"written to {args.output}" if written else f"the same report as {args.output}, left as it was")
        return
    report, recorded, recomputed_on = recompute_eval(folder, args.data_root)
    print(format_report(report, f"{folder}, recomputed from its weights:"))
    keys = ("top1", "many", "medium", "few")
    # Equal counts of correct images can differ in the last bit of a mean (78.5 against 78.49999999999999).
    differ = [f"{key} {report[key]} (recorded {recorded.get(key)})" for key in keys
              if (report[key] is None) != (recorded.get(key) is None)
              or report[key] is not None and not math.isclose(report[key], recorded[key], rel_tol=0, abs_tol=1e-9)]
    if differ:
        raise DataError(f"the recomputed report differs from {folder / 'eval.json'}: {', '.join(differ)} "
                        f"({processors_note(folder, recomputed_on)})")
    print(f"identical to {folder / 'eval.json'} in top-1, many, medium and few")


def _study_recipe(args: argparse.Namespace):
    """A study's recipe: the config with its overrides, imbalance ratio and data root."""
    recipe = load_config(args.config, args.overrides)
    if args.imbalance_ratio is not None:
        recipe.data.imbalance_ratio = args.imbalance_ratio
    if args.data_root:
        recipe.data.root = args.data_root
    return recipe


def _study(args: argparse.Namespace) -> None:
    from .analysis.representation_classifier import run_study

    run_study(_study_recipe(args), Path(args.output_dir), args.epochs, args.classifier_epochs)


def _bbn_ablations(args: argparse.Namespace) -> None:
    from .analysis.bbn_ablations import run_ablations

    run_ablations(_study_recipe(args), Path(args.output_dir), args.epochs)


def _feature_quality(args: argparse.Namespace) -> None:
    from .analysis.feature_quality import run_study

    run_study(_study_recipe(args), args.runs, Path(args.output_dir), args.labels)


def _datasets(args: argparse.Namespace) -> None:
    from .data.benchmark_sets import BENCHMARKS, missing_files, profile_mismatches

    spec = {"name": args.name, **({"image_root": args.image_root} if args.image_root else {})}
    if args.name in BENCHMARKS:  # a partial download is reported below, not refused
        spec["allow_missing_classes"] = True
    source = SOURCES.build(spec, **({"root": args.data_root} if args.data_root else {}))
    targets = source.train.targets
    subset = ""
    if args.imbalance_ratio is not None:
        targets = targets[longtailed_indices(targets, source.num_classes, args.imbalance_ratio, args.profile,
                                             args.subset_seed)]
        subset = f"; imbalance ratio {args.imbalance_ratio:g} ({args.profile}), subset seed {args.subset_seed}"
    counts = np.bincount(targets, minlength=source.num_classes)
    groups = shot_groups(counts, args.many, args.few)
    width = max(len(c) for c in source.classes)
    for index, (name, count, group) in enumerate(zip(source.classes, counts, groups)):
        print(f"{index:4d}  {name:<{width}}  {count:6d}  {group}")
    summary = ", ".join(f"{g} {int((groups == g).sum())}" for g in ("many", "medium", "few"))
    test_split = source.info.get("test_split", "test")
    print(f"total {int(counts.sum())} training images in {source.num_classes} classes ({summary}); "
          f"{len(source.test)} {test_split} images; {counts.max()} to {counts.min()} a class{subset}")
    problems = [] if args.imbalance_ratio is not None else profile_mismatches(source)
    if args.check_files:
        for split, images in (("training", source.train), (test_split, source.test)):
            missing, examples = missing_files(images)
            if missing:
                problems.append(f"{missing:,} of the {len(images):,} {split} images listed are missing, "
                                f"e.g. {', '.join(examples)}")
    for problem in problems:
        print(f"longtail: warning: {problem}", file=sys.stderr)
    if problems:
        print("longtail: warning: the data differs from its published form; is the download "
              "complete, and are these the official split files?", file=sys.stderr)
    elif source.name in BENCHMARKS and args.imbalance_ratio is None:
        print(f"{source.name} matches its published totals"
              + (", and every listed image file exists" if args.check_files else ""))


def _demo(args: argparse.Namespace) -> None:
    from .analysis.plots import plot_comparison
    from .engine import Trainer

    preset = resources.files("longtail") / "presets"
    reports = {}
    with tempfile.TemporaryDirectory() as scratch:
        for label, extra in DEMO_METHODS.items():
            config = load_config(preset / "demo_digits.yaml", [*extra, *args.overrides])
            print(f"== {label}: {config.train.epochs} epochs on long-tailed digits ==", flush=True)
            reports[label] = Trainer(config, Path(scratch) / label.replace(" ", "_"), log=lambda _: None).fit()
    width = max(map(len, reports)) + 2
    print(f"\n{'method':<{width}}{'overall':>9}{'many':>9}{'medium':>9}{'few':>9}")
    for label, report in reports.items():
        print(f"{label:<{width}}" + "".join(f"{report[k]:9.2f}" for k in ("top1", "many", "medium", "few")))
    baseline = reports["CE"]
    for label, report in reports.items():
        if label != "CE" and (report["few"] <= baseline["few"] or report["top1"] <= baseline["top1"]):
            print(f"note: at this small budget {label} does not lift both few-shot and overall accuracy "
                  "over CE; the full-scale runs in the README's Results do")
    plot_comparison(reports, Path(args.output), "long-tailed digits (IR 50), test accuracy")
    print(f"tail figure written to {args.output}")


def _record(args: argparse.Namespace) -> None:
    from .analysis.results import record
    from .analysis.results_table import update_readme

    written = record(Path(args.run_dir), Path(args.destination), args.force, args.data_root)
    print(f"recorded {', '.join(written)} in {args.destination}")
    if args.readme:
        update_readme(Path(args.readme), Path(args.destination).parent.parent)
        print(f"updated the results table in {args.readme}")


def _results_table(args: argparse.Namespace) -> None:
    from .analysis.results_table import results_table, update_readme

    if args.readme:
        update_readme(Path(args.readme), Path(args.results))
        print(f"updated the results table in {args.readme}")
    else:
        print(results_table(Path(args.results)))


def _runs(args: argparse.Namespace) -> None:
    from .analysis.runs import find_runs, format_runs

    runs = find_runs(Path(args.folder))
    print(format_runs(runs) if runs else f"no runs under {args.folder} (folders with a config.yaml)")


def _plot(args: argparse.Namespace) -> None:
    from .analysis.plots import load_report, plot_comparison
    from .analysis.trained import run_labels

    targets = [Path(target) for target in args.targets]
    labels = run_labels(targets, args.labels)
    reports = {label: load_report(target) for label, target in zip(labels, targets)}
    plot_comparison(reports, Path(args.output), args.title, args.window)
    print(f"written to {args.output}")


def _analyze(args: argparse.Namespace) -> None:
    from importlib import import_module

    # The subcommand's options are the keyword arguments of its module's analyze().
    options = {key: value for key, value in vars(args).items() if key not in ("command", "analyze", "analysis", "run")}
    written = import_module(f".analysis.{args.analysis}", __package__).analyze(**options)
    print("written to " + ", ".join(str(path) for path in written))


def _add_analyses(commands) -> None:
    analyze = commands.add_parser("analyze", help="the papers' analyses of finished runs: figures and tables")
    analyses = analyze.add_subparsers(dest="analyze", required=True)

    def entry(name: str, module: str, help: str, runs: str | None = None, device: bool = False):
        parser = analyses.add_parser(name, help=help)
        if runs:
            parser.add_argument("runs", nargs="+", help=runs)
            parser.add_argument("--labels", nargs="+", help="one name per run (default: the directory names)")
            parser.add_argument("--data-root", help="where the runs' datasets live now")
        if device:
            parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
        parser.add_argument("--output-dir", default="runs/analyses",
                            help=f"where {module}.json, {module}.md (and {module}.png) go")
        parser.set_defaults(run=_analyze, analysis=module)
        return parser

    adaptors = entry("adaptors", "adaptors", "BBN Figure 7: alpha of every adaptor against T/T_max")
    adaptors.add_argument("--epochs", type=int, default=200, help="T_max")
    lextra = entry("paco-lextra", "paco_lextra", "PaCo Figure 4: the curve of L_extra (Eq. 6) and its argmin")
    lextra.add_argument("--alpha", type=float, default=0.05)
    lextra.add_argument("--queue", type=int, default=8192, help="length of the MoCo queue")
    lextra.add_argument("--q-star", type=float, default=0.001, help="frequency of every class")
    entry("weight-norms", "weight_norms", "BBN Figure 4: per-class norm of the classifier weights, head to tail",
          runs="run directories of one dataset (CE, RW, RS, BBN, ...)")
    calibration = entry("calibration", "calibration", "reliability diagram and ECE overall and by many/medium/few, "
                        "and how often tail images are predicted as head classes", runs="run directories", device=True)
    calibration.add_argument("--bins", type=int, default=15, help="equal-width confidence bins")
    entry("compactness", "compactness", "BBN Figure 6: intra-class compactness of the training images' "
          "representations, head to tail", runs="run directories of one dataset (CE, RW, RS, BBN, ...)", device=True)
    ensemble = entry("ensemble", "ensemble", "BBN Table 6: softmax-averaging ensembles of two runs against "
                     "single runs, with parameter counts", device=True)
    ensemble.add_argument("run_a", help="e.g. the uniform-sampler run")
    ensemble.add_argument("run_b", help="e.g. the class-balanced-sampler run")
    ensemble.add_argument("--pair", nargs=2, action="append", dest="pairs", metavar=("RUN_A", "RUN_B"),
                          help="one more ensemble (repeatable), e.g. uniform + reversed")
    ensemble.add_argument("--also", nargs="+", dest="singles", metavar="RUN",
                          help="runs to list alone, e.g. the BBN run")
    ensemble.add_argument("--data-root", help="where the runs' dataset lives now")
    curves = entry("accuracy-curves", "accuracy_curves", "test top-1 per epoch (train.eval_every): the final "
                   "epoch against the mean of the last epochs and the best (test-selected, never a result) epoch")
    curves.add_argument("runs", nargs="+", help="run directories or results/ folders that logged test accuracy")
    curves.add_argument("--labels", nargs="+", help="one name per run (default: the directory names)")
    curves.add_argument("--last", type=int, default=10, help="how many final evaluated epochs to average")
    curves.add_argument("--paper", type=float, help="the paper's figure, drawn as a dotted line")
    entry("classifier-grad", "classifier_grad", "PaCo Figure 2: mean gradient norm of each class's classifier "
          "weights, classes sorted by image count", runs="runs trained with train.log_classifier_grad_every=N")
    precision = entry("grad-precision", "grad_precision", "how far a training step's gradients under bf16 "
                      "autocast are from fp32's, per part of the model and epoch (issue 15's question for BBN)",
                      runs="run directories or results folders", device=True)
    precision.add_argument("--epochs", nargs="+", type=int, help="1-based epochs whose state (BBN: alpha) to "
                           "measure in (default: the first, middle, three-quarter and last)")
    precision.add_argument("--batches", type=int, default=4, help="training batches per epoch")
    precision.add_argument("--precision", default="bf16", choices=("bf16", "fp16"), help="against fp32")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="longtail", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train from a YAML config")
    train.add_argument("config", help="a YAML config, or a run directory to --resume")
    train.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.epochs=10")
    train.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    train.add_argument("--data-root", help="where datasets live (default: $LONGTAIL_DATA or ./data)")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("eval", help="evaluate a run directory or checkpoint on the test set")
    evaluate.add_argument("target", help="a run directory, a .pt checkpoint, or a results folder (its "
                          "shipped weights are checked against its eval.json)")
    evaluate.add_argument("--branch", help="BBN: score one branch alone (conventional | rebalancing)")
    evaluate.add_argument("--tau-norm", type=float, metavar="TAU",
                          help="post-hoc: divide each class weight by its norm ** TAU first")
    evaluate.add_argument("--logit-adjust", type=float, metavar="TAU",
                          help="post-hoc: subtract TAU * log(class prior) from the logits")
    evaluate.add_argument("--precision", choices=("fp32", "bf16", "fp16"),
                          help="compute in this precision instead of the run's (its report is then "
                          "eval_PRECISION.json; for a results folder, only --output is written)")
    evaluate.add_argument("--output", metavar="FILE", help="the report file (default: the run's eval.json "
                          "for its final checkpoint, else eval_epoch_NNNN.json beside it)")
    evaluate.add_argument("--data-root")
    evaluate.set_defaults(run=_eval)

    study = commands.add_parser("study", help="multi-run studies with a table (and a figure)")
    studies = study.add_subparsers(dest="study", required=True)
    def study_parser(name: str, help: str, config: str, epochs: str | None, output_dir: str, outputs: str):
        """A study's command: a recipe with overrides for every run, its budget and output folder."""
        parser = studies.add_parser(name, help=help)
        parser.add_argument("config", help=f"the recipe, e.g. {config}")
        parser.add_argument("overrides", nargs="*", help="key=value overrides for every run")
        parser.add_argument("--imbalance-ratio", type=float, help="e.g. 50 (BBN's setting)")
        if epochs:
            parser.add_argument("--epochs", type=int, default=200,
                                help=f"{epochs}; the recipe's warm-up and milestones are scaled to them")
        parser.add_argument("--output-dir", default=output_dir,
                            help=f"where the runs, {outputs} go; finished runs there are reused")
        parser.add_argument("--data-root")
        return parser

    grid = study_parser(
        "representation-classifier",
        "BBN Figure 2: CE/RW/RS representation x CE/RW/RS classifier (cRT), top-1 errors",
        "configs/cifar100_lt/base.yaml", "stage-1 (representation) epochs",
        "runs/study_representation_classifier", "table.md, results.json and heatmap.png")
    grid.add_argument("--classifier-epochs", type=int, default=10,
                      help="stage-2 epochs (new linear classifier, cosine learning rate)")
    grid.set_defaults(run=_study)
    ablations = study_parser(
        "bbn-ablations", "BBN Tables 3 and 4: the re-balancing branch's sampler and the adaptor, "
        "eight runs, top-1 errors next to the paper's", "configs/cifar10_lt/bbn.yaml",
        "epochs of every run", "runs/study_bbn_ablations", "table.md and results.json")
    ablations.set_defaults(run=_bbn_ablations)
    quality = study_parser(
        "feature-quality", "BBN Table 5: a classifier retrained (cRT) on the frozen features of each run "
        "(both branches of a BBN run), top-1 errors next to the paper's", "configs/cifar100_lt/crt.yaml",
        None, "runs/study_feature_quality", "table.md and results.json")
    quality.add_argument("--runs", nargs="+", required=True, metavar="RUN",
                         help="finished stage-1 run directories or results folders, e.g. CE, RW, RS and BBN")
    quality.add_argument("--labels", nargs="+", help="one name per run, e.g. CE RW RS BBN (BBN-CB and "
                         "BBN-RB are named after a BBN run's label; default: the directory names)")
    quality.set_defaults(run=_feature_quality)

    datasets = commands.add_parser(
        "datasets", help="list a dataset's classes and long-tailed counts; the large benchmarks "
        "are checked against their published totals")
    datasets.add_argument("name", help=", ".join(SOURCES.names()))
    datasets.add_argument("--imbalance-ratio", type=float, help="build the long-tailed subset")
    datasets.add_argument("--profile", default="exp", choices=["exp", "step"])
    datasets.add_argument("--subset-seed", type=int, default=0,
                          help="which images the subset keeps (data.subset_seed; 0: the papers' subsets)")
    datasets.add_argument("--many", type=int, default=100, help="many-shot: more than this")
    datasets.add_argument("--few", type=int, default=20, help="few-shot: fewer than this")
    datasets.add_argument("--data-root", help="where the dataset (for the large benchmarks: its split files) lives")
    datasets.add_argument("--image-root", help="large benchmarks: the folder the split files' image paths "
                          "start from (default: --data-root)")
    datasets.add_argument("--no-check-files", dest="check_files", action="store_false",
                          help="do not check that every listed image file exists")
    datasets.set_defaults(run=_datasets)

    demo = commands.add_parser("demo", help="train on long-tailed digits and compare methods")
    demo.add_argument("overrides", nargs="*", help="key=value overrides for every demo run")
    demo.add_argument("--output", default="demo_tail.png", help="the tail figure (png, pdf or svg)")
    demo.set_defaults(run=_demo)
    plot = commands.add_parser(
        "plot", help="compare runs: per-class accuracy along the tail, and many/medium/few")
    plot.add_argument("targets", nargs="+", help="run directories or eval*.json reports")
    plot.add_argument("--labels", nargs="+", help="one name per run (default: the directory names)")
    plot.add_argument("--output", default="comparison.png", help="the figure (png, pdf or svg)")
    plot.add_argument("--title", default="")
    plot.add_argument("--window", type=int, default=5, help="classes averaged per point")
    plot.set_defaults(run=_plot)
    recorder = commands.add_parser(
        "record", help="copy a finished run's text files and final inference weights into results/")
    recorder.add_argument("run_dir")
    recorder.add_argument("destination", help="e.g. results/cifar100_lt/ce_ir100")
    recorder.add_argument("--force", action="store_true", help="replace a record already there")
    recorder.add_argument("--readme", help="also rebuild this README's results table")
    recorder.add_argument("--data-root", help="where the run's dataset lives (for its class count and "
                          "normalisation, stored with the weights)")
    recorder.set_defaults(run=_record)
    table = commands.add_parser("results-table", help="the README results table, from results/")
    table.add_argument("--results", default="results", help="the results folder")
    table.add_argument("--readme", help="rewrite the table between this README's results-table markers "
                       "(default: print it)")
    table.set_defaults(run=_results_table)
    runs = commands.add_parser("runs", help="every run under a folder: epochs done, status, accuracy")
    runs.add_argument("folder", help="e.g. runs/")
    runs.set_defaults(run=_runs)
    _add_analyses(commands)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse a command line; ``key=value`` overrides may also come after the options
    (``train CONFIG --data-root DIR train.epochs=10``), which argparse alone refuses."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    overrides = [arg for arg in extra if "=" in arg and not arg.startswith("-")]
    if extra != overrides or (overrides and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if overrides:
        args.overrides += overrides
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        args.run(args)
    except KeyboardInterrupt as interrupt:  # Ctrl-C: one line (an Interrupted one says what is saved)
        print(f"longtail: {str(interrupt) or 'interrupted'}", file=sys.stderr)
        return 130
    except UserError as error:  # anything else is a bug in longtail and keeps its traceback
        print(f"longtail: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
