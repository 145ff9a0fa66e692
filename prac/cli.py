"""The `prac-lth` command line. Bad input: one line on stderr, exit code 2, never a traceback."""
from __future__ import annotations

import argparse
import sys

from prac.errors import UserError
from prac.overrides import apply_overrides
from prac.presets import PRESETS, preset_config


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, exit 2
        print(f"prac-lth: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="prac-lth", description="Lottery tickets found on Pruning-Aware Critical sets.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands.add_parser("presets", help="list the named presets")
    run = commands.add_parser("run", help="run one experiment (preset × method × seed)")
    run.add_argument("preset")
    run.add_argument("--method", choices=["prac", "lt", "random"], default="prac")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config field, e.g. --set train.epochs=5 (repeatable)")
    run.add_argument("--data-dir", help="where the dataset's files are")
    run.add_argument("--output-dir", help="where runs are written (default ./prac-runs)")
    run.add_argument("--verbose", action="store_true", help="print every epoch")
    return parser


def _run(args: argparse.Namespace) -> None:
    config = preset_config(args.preset)
    extra = [f"method={args.method}", f"seed={args.seed}"]
    if args.data_dir:
        extra.append(f"runtime.data_dir={args.data_dir}")
    if args.output_dir:
        extra.append(f"runtime.output_dir={args.output_dir}")
    if args.verbose:
        extra.append("runtime.verbose=true")
    config = apply_overrides(config, extra + args.overrides)
    # Imported here so `presets` and argument errors stay fast.
    from prac.experiment import run_experiment
    from prac.report import print_rounds

    print_rounds(run_experiment(config))


def _presets() -> None:
    for name, preset in PRESETS.items():
        print(f"{name:28s} {preset['data']['dataset']:14s} {preset['model']['name']}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "presets":
            _presets()
        elif args.command == "run":
            _run(args)
    except UserError as error:
        print(f"prac-lth: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("prac-lth: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
