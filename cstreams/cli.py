"""Command line: ``cstreams describe MODULE:TOPOLOGY`` and ``cstreams run MODULE:TOPOLOGY``.

TOPOLOGY names a cstreams.Topology object or a zero-argument function returning one.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from cstreams.errors import ConfigurationError, CStreamsError


def load_topology(spec):
    """'package.module:name' -> Topology (calling ``name`` when it is a factory)."""
    from cstreams.topology import Topology

    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(f"expected MODULE:TOPOLOGY, got {spec!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigurationError(f"cannot import module {module_name!r}: {e}") from e
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigurationError(f"module {module_name!r} has no attribute {attr!r}"
                                     ) from None
    if not isinstance(obj, Topology) and callable(obj):
        obj = obj()
    if not isinstance(obj, Topology):
        raise ConfigurationError(f"{spec} is a {type(obj).__name__}, not a cstreams.Topology "
                                 f"(or a function returning one)")
    return obj


def _parse_config(items):
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigurationError(f"--config takes key=value, got {item!r}")
        out[key.strip()] = value
    return out


def _parser():
    p = argparse.ArgumentParser(prog="cstreams", description="cstreams stream processing")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("describe", help="print the topology's sub-topologies and nodes")
    d.add_argument("topology", help="MODULE:TOPOLOGY (a Topology or a factory function)")
    r = sub.add_parser("run", help="run the topology against Kafka until SIGINT/SIGTERM")
    r.add_argument("topology", help="MODULE:TOPOLOGY (a Topology or a factory function)")
    r.add_argument("--application-id", required=True)
    r.add_argument("--bootstrap-servers", required=True)
    r.add_argument("--state-dir", default=None)
    r.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                   help="a confluent-kafka setting (repeatable); see cstreams.runtime.config")
    r.add_argument("--processing-guarantee", default="at_least_once",
                   choices=["at_least_once", "exactly_once_v2"])
    r.add_argument("--instance-id", default=None,
                   help="stable per-instance id for the transactional.id (exactly-once)")
    r.add_argument("--commit-interval-ms", type=int, default=None,
                   help="default 30000 at-least-once, 100 exactly-once")
    r.add_argument("--error-handler", default="fail",
                   help="fail, skip or dead-letter:TOPIC")
    r.add_argument("--progress-interval-ms", type=int, default=30_000)
    r.add_argument("--processes", type=int, default=1,
                   help="worker processes (default 1: this process runs the app); each is a "
                        "group member with its own state directory (cstreams.workers)")
    r.add_argument("--metrics-port", type=int, default=None,
                   help="serve /metrics (Prometheus) and /health/live, /health/ready here")
    r.add_argument("--metrics-host", default="0.0.0.0")
    r.add_argument("--log-level", default="INFO")
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        topology = load_topology(args.topology)
        if args.command == "describe":
            print(topology.describe(), end="")
            return 0
        logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        from cstreams.app import App

        app = App(topology, application_id=args.application_id,
                  bootstrap_servers=args.bootstrap_servers, state_dir=args.state_dir,
                  config=_parse_config(args.config),
                  processing_guarantee=args.processing_guarantee,
                  instance_id=args.instance_id,
                  commit_interval_ms=args.commit_interval_ms,
                  error_handler=args.error_handler,
                  progress_interval_ms=args.progress_interval_ms,
                  metrics_port=args.metrics_port, metrics_host=args.metrics_host)
        app.run(processes=args.processes)
        return 0
    except CStreamsError as e:
        print(f"cstreams: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
