"""``shiftd``: run the daemon, check a configuration file, or run the demo.

    shiftd run --config FILE        run until SIGTERM/SIGINT (exit 0 after an orderly stop);
                                    SIGHUP reloads the log level; systemd's Type=notify
    shiftd crds [--output DIR]      print (or write) the CustomResourceDefinitions shiftd reads
    shiftd check-config FILE        validate a configuration file (exit 2 naming the bad key)
    shiftd demo [--speed N]         seed 000 on the embedded API emulator, checked step by step

A bad configuration exits with code 2 and a one-line message naming the key.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio

from shiftd import __version__
from shiftd.cli.eventloop import backend_options
from shiftd.cli.service import Service
from shiftd.config import ConfigError, Settings, load_settings
from shiftd.crds import render_files
from shiftd.logs import configure_logging

EXIT_BAD_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shiftd",
        description="Argo-compatible canary Rollouts with Istio traffic shifting.",
    )
    parser.add_argument("--version", action="version", version=f"shiftd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the daemon")
    run.add_argument("--config", required=True, help="path to the configuration file")
    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("config", nargs="?", help="path to the configuration file")
    check.add_argument("--config", dest="config_option", help=argparse.SUPPRESS)
    crds = commands.add_parser("crds", help="print or write the CRDs shiftd reads")
    target = crds.add_mutually_exclusive_group()
    target.add_argument("--output", metavar="DIR",
                        help="write one file per CRD and a kustomization.yaml into DIR")
    target.add_argument("--check", metavar="DIR",
                        help="exit 1 if DIR's files differ from what --output would write")
    demo = commands.add_parser("demo", help="run seed 000's canary on the embedded emulator")
    demo.add_argument("--speed", type=float, default=20.0,
                      help="rollout seconds per wall second for the timed pauses (default 20)")
    demo.add_argument("--plain", action="store_true",
                      help="print one line per state instead of redrawing")
    return parser


def _load(path: str) -> Settings:
    try:
        return load_settings(path)
    except ConfigError as error:
        print(f"shiftd: {error}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_CONFIG) from None


def crds_command(*, output: str | None, check: str | None) -> int:
    """``shiftd crds``: the CRDs on stdout, written into ``output``, or checked in ``check``."""
    files = render_files()
    if output is not None:
        directory = Path(output)
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (directory / name).write_text(text, encoding="utf-8")
        return 0
    if check is not None:
        stale = [name for name, text in files.items()
                 if not (Path(check) / name).is_file()
                 or (Path(check) / name).read_text(encoding="utf-8") != text]
        for name in stale:
            print(f"shiftd: {Path(check) / name} is out of date: run "
                  f"`shiftd crds --output {check}`", file=sys.stderr)
        return 1 if stale else 0
    print("---\n".join(text for name, text in files.items() if name != "kustomization.yaml"),
          end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.command == "check-config":
        path = arguments.config or arguments.config_option
        if not path:
            print("shiftd: check-config needs a FILE", file=sys.stderr)
            return EXIT_BAD_CONFIG
        _load(path)
        print(f"{path}: ok")
        return 0
    if arguments.command == "run":
        settings = _load(arguments.config)
        configure_logging(settings.log.level, settings.log.format)
        try:
            return anyio.run(Service(settings, config_path=Path(arguments.config)).serve,
                             backend_options=backend_options(settings.event_loop))
        except ConfigError as error:  # a setting found unusable at start (mesh.kubeconfig)
            print(f"shiftd: {arguments.config}: {error}", file=sys.stderr)
            return EXIT_BAD_CONFIG
    if arguments.command == "crds":
        return crds_command(output=arguments.output, check=arguments.check)
    if arguments.command == "demo":
        from shiftd.cli.demo import run_demo  # noqa: PLC0415 - the emulator loads only for the demo

        return anyio.run(run_demo, arguments.speed, arguments.plain)
    return EXIT_BAD_CONFIG


if __name__ == "__main__":
    raise SystemExit(main())
