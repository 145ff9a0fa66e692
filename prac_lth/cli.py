"""The `prac-lth` command line. Bad input: one line on stderr, exit code 2, never a traceback."""
from __future__ import annotations

import argparse
import logging
import re
import sys

from prac.settings.config import ExperimentConfig
from prac.artifacts.storage import storage_errors_in_one_line
from prac.errors import UserError
from prac.settings.presets import PRESETS
from prac_lth.environment import local_server_starting, prepare_prefect_environment
from prac_lth.outages import apply_client_defaults, prefect_outage
from prac_lth.stops import EXIT_CODES, sigterm_raises, stop_kind


class _Parser(argparse.ArgumentParser):
    lists_methods = False  # run's and compare's --help end with the methods, one line each

    def error(self, message: str) -> None:  # argparse's own errors: one line, exit 2
        print(f"prac-lth: error: {message}", file=sys.stderr)
        raise SystemExit(2)

    def format_help(self) -> str:
        if not self.lists_methods:
            return super().format_help()
        from prac.strategies.methods import METHODS  # imported here: only a help text needs the registry

        width = max(map(len, METHODS))
        lines = [f"  {name:{width}s}  {METHODS.get(name).summary}" for name in METHODS]
        return super().format_help() + "\nmethods (prac.strategies.methods):\n" + "\n".join(lines) + "\n"


def _add_common(command: argparse.ArgumentParser) -> None:
    command.add_argument("preset")
    command.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                         help="override a config field, e.g. --set train.epochs=5 (repeatable)")
    command.add_argument("--data-dir", help="where the dataset's files are")
    command.add_argument("--output-dir", help="where runs are written (default ./prac-runs)")
    command.add_argument("--verbose", action="store_true", help="print every epoch")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="prac-lth", description="Lottery tickets found on Pruning-Aware Critical sets.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands.add_parser("presets", help="list the named presets")
    run = commands.add_parser("run", help="run one experiment (preset × method × seed) through the flow")
    _add_common(run)
    # Any registered method (a researcher's too): checked with the rest of the config (prac.build_config)
    run.add_argument("--method", default="prac", help="a method (listed below; default prac)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--engine-only", action="store_true",
                     help="run in-process without Prefect or MLflow (same steps, same files)")
    run.add_argument("--recompute", action="append", default=[], metavar="STAGE[@ROUND]",
                     help="compute a cached stage again (e.g. prune@3, or select-cep for every round); "
                          "what reads it is recomputed if its output changed (repeatable)")
    compare = commands.add_parser("compare", help="run methods × seeds of a preset and gather their rounds")
    _add_common(compare)
    compare.add_argument("--seeds", default="0", help="comma-separated seeds and ranges, e.g. 0-15 or 0-3,8 (default 0)")
    compare.add_argument("--methods", default="prac,lt", help="comma-separated methods (listed below; default prac,lt)")
    compare.add_argument("--margin", type=float, default=0.5, metavar="POINTS",
                         help="the non-inferiority margin in accuracy points: a method is non-inferior to lt where "
                              "its paired 95 %% interval stays above -POINTS (default 0.5)")
    compare.add_argument("--parallel", type=int, default=1, metavar="N",
                         help="N experiments at once, as processes (e.g. 3 on one GPU; default 1: one after another)")
    compare.add_argument("--engine-only", action="store_true",
                         help="run in-process without Prefect or MLflow; experiments that finished before are read back")
    compare.add_argument("--pool", metavar="NAME",
                         help="run each experiment as a flow run of the prac-lth/<dataset> deployment on this work "
                              "pool of the Prefect server at PREFECT_API_URL; its workers must share --output-dir")
    run.lists_methods = compare.lists_methods = True
    _add_export(commands)
    commands.add_parser("serve", help="serve the Prefect deployments prac-lth/<dataset>")
    commands.add_parser("demo", help="the offline demo: compare prac and lt on digits")
    return parser


def _add_export(commands) -> None:
    # the defaults live in prac.export.export_run; repeated here as plain numbers so --help needs no torch import
    export = commands.add_parser("export", help="a retrained round's ticket: compact, as ONNX and as a sparse module "
                                                "(CSR where measured faster), timed and checked")
    export.add_argument("run_folder", metavar="RUN_FOLDER", help="a run folder, <output>/<preset>/<fingerprint>")
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--round", type=int, metavar="R", help="the round whose trained ticket to export")
    which.add_argument("--sparsity", type=float, metavar="S",
                       help="the retrained round whose sparsity is nearest S (a fraction, e.g. 0.9)")
    export.add_argument("--out", metavar="DIR", help="where the files go (default RUN_FOLDER/export/round_RR)")
    export.add_argument("--threads", type=int, default=2, metavar="N",
                        help="CPU threads every timing runs on (default 2)")
    export.add_argument("--batch", type=int, default=256, metavar="B",
                        help="the batch size each layer's format is chosen for (default 256; 1 for latency); the "
                             "table times batch 1 and 256 too")
    export.add_argument("--measure-time", type=float, default=0.5, metavar="SEC",
                        help="seconds each timing runs at least (default 0.5)")


def _export(args: argparse.Namespace) -> None:
    from prac.export.export_run import export_ticket
    from prac.export.export_table import print_export

    print_export(export_ticket(args.run_folder, round_index=args.round, sparsity=args.sparsity, out=args.out,
                               threads=args.threads, batch=args.batch, measure_time=args.measure_time))


def _runtime_overrides(args: argparse.Namespace) -> list[str]:
    extra = []
    if args.data_dir:
        extra.append(f"runtime.data_dir={args.data_dir}")
    if args.output_dir:
        extra.append(f"runtime.output_dir={args.output_dir}")
    if args.verbose:
        extra.append("runtime.verbose=true")
    return extra + args.overrides


def _int_list(text: str, what: str) -> list[int]:
    """Comma-separated integers and inclusive ranges: `0-3,8,10-11` is 0, 1, 2, 3, 8, 10, 11."""
    values: list[int] = []
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        if re.fullmatch(r"[+-]?\d+", item):
            values.append(int(item))
        elif span := re.fullmatch(r"(\d+)\s*-\s*(\d+)", item):
            first, last = int(span[1]), int(span[2])
            if first > last:
                raise UserError(f"--{what}: the range '{item}' runs backwards: write {last}-{first}")
            values.extend(range(first, last + 1))
        else:
            raise UserError(f"--{what} expects comma-separated integers or ranges (0-15), got '{item}' in '{text}'")
    return values


def _run(args: argparse.Namespace) -> None:
    overrides = _runtime_overrides(args)
    from prac.build_config import build_config

    config = build_config(args.preset, args.method, args.seed, overrides)  # bad input stops here, once
    from prac.imp.recompute import parse_recompute
    from prac.reporting.report import print_rounds

    parse_recompute(args.recompute, config.prune.rounds)
    from prac.imp.budget import check_reference

    check_reference(config)  # a method at the prac run's budget needs that run finished: one line, before anything
    if args.engine_only:
        if args.recompute:
            raise UserError("--recompute is for runs through the flow (--engine-only computes every stage "
                            "anyway, except a shared round 0 written by this code)")
        from prac.experiment import run_experiment

        result = run_experiment(config)
        print_rounds(config, result.rounds)
        return
    _preflight(config)
    from prac_lth.flows.experiment_flow import prac_lth
    from prac.imp.round_record import RoundRecord

    records = prac_lth(preset=args.preset, method=args.method, seed=args.seed, recompute=args.recompute or None,
                       config=config.model_dump(mode="json"))  # passed down, not built again
    print_rounds(config, [RoundRecord(**r) for r in records])


def _preflight(config: ExperimentConfig) -> None:
    """What would fail inside the flow (with Prefect's traceback) is checked here first, as one line:
    the tracking store, and the data (loaded once; the flow's tasks reuse it in this process)."""
    from prac.data.registry import check_data_dir

    check_data_dir(config.data.dataset, config.runtime.data_dir, config.runtime.download)  # before any server starts
    prepare_prefect_environment(config.runtime.output_dir)
    from prac_lth.tasks import tracking
    from prac_lth.tasks.context import experiment_context

    with local_server_starting():  # meanwhile
        experiment_context(config)  # data first: checking the store may create it
        tracking.check_tracking_reachable(tracking.tracking_uri())


def _check_pool(config: ExperimentConfig, pool: str) -> None:
    """The pool's deployment and an online worker, checked before the comparison's flow run is created."""
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise UserError(f"--pool {pool} needs PREFECT_API_URL, the Prefect server of the pool's workers (without it "
                        f"this command starts a temporary server of its own, where no worker is)")
    from prac_lth.flows import fleet

    fleet.check_pool(config, pool)


def _compare(args: argparse.Namespace, preset: str | None = None) -> None:
    preset = preset or args.preset
    overrides = _runtime_overrides(args)
    seeds = _int_list(args.seeds, "seeds")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not seeds or not methods:
        raise UserError(f"--seeds and --methods need at least one value each, got '{args.seeds}' and '{args.methods}'")
    if args.parallel < 1:
        raise UserError(f"--parallel must be at least 1, got {args.parallel}")
    for flag, values in (("--seeds", seeds), ("--methods", methods)):
        if twice := sorted({str(v) for v in values if values.count(v) > 1}):
            raise UserError(f"{flag} names {', '.join(twice)} twice: each experiment runs once")
    from prac.build_config import build_config

    from prac.imp.budget import check_references

    from prac_lth.flows.config_params import check_margin

    margin = check_margin(args.margin)
    configs = [build_config(preset, method, seed, overrides) for seed in seeds for method in methods]
    check_references(configs)  # a method at prac's budget without its prac run: one line, nothing trained
    if args.engine_only and args.pool:
        raise UserError("--pool runs the experiments as Prefect flow runs: it cannot go with --engine-only")
    if args.engine_only:
        from prac.experiment import compare_in_process
        from prac.reporting.report import print_comparison

        print_comparison(compare_in_process(configs, parallel=args.parallel), margin, configs)
        return
    if args.pool:
        _check_pool(configs[0], args.pool)
    _preflight(configs[-1])
    from prac_lth.flows.compare import compare
    from prac.code_version import code_version_of
    from prac.reporting.report import print_comparison
    from prac_lth.tasks import chart_view, comparison_logging, tracking

    print_comparison(compare(preset=preset, methods=methods, seeds=seeds, overrides=overrides, parallel=args.parallel,
                             configs=[c.model_dump(mode="json") for c in configs], pool=args.pool,
                             margin=args.margin), margin, configs)  # the configs are not built again
    link = comparison_logging.find_link(preset, methods, seeds, overrides, code_version_of(configs[0]), margin)
    if link:
        print(f"MLflow comparison run (figures, tables, metrics): {link}")
        if charts := chart_view.find_methods_chart_link(preset):
            print(f"MLflow charts, every method round by round across seeds: {charts}")
        if command := tracking.ui_command():  # a local store: nothing serves the UI yet
            print(f"start the MLflow UI first: {command}")


def _presets() -> None:
    for name, preset in PRESETS.items():
        print(f"{name:28s} {preset['data']['dataset']:14s} {preset['model']['name']}")


def _serve() -> None:
    from prac.settings.config import RuntimeConfig

    prepare_prefect_environment(RuntimeConfig().output_dir)
    from prac_lth.deployments.serve import serve_all

    serve_all()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    apply_client_defaults()  # before Prefect is imported: its settings are read then
    # Prefect's log shipper writes each batch it could not send to the API (a server away) on stderr, under the
    # run's own lines and after its one-line error; those lines are on the terminal already
    logging.raiseExceptions = False
    try:
        # a disk that filled under MLflow's store, not only under our files; SIGTERM ended as Ctrl-C is
        with storage_errors_in_one_line(), sigterm_raises():
            if args.command == "presets":
                _presets()
            elif args.command == "run":
                _run(args)
            elif args.command == "compare":
                _compare(args)
            elif args.command == "export":
                _export(args)
            elif args.command == "demo":
                _compare(_parser().parse_args(["compare", "digits"]))
            elif args.command == "serve":
                _serve()
    except UserError as error:
        print(f"prac-lth: error: {error}", file=sys.stderr)
        return 2
    except BaseException as stop:  # Ctrl-C, SIGTERM, a cancelled flow run: one line, the shell's exit code
        if kind := stop_kind(stop):
            print(f"prac-lth: {kind}", file=sys.stderr)
            return EXIT_CODES[kind]
        if isinstance(stop, Exception) and (line := prefect_outage(stop)):  # longer than the client's retries
            print(f"prac-lth: error: {line}", file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
