"""Command line: ``python -m upstream_sim [options]``."""

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence

from upstream_sim.config import DEFAULT_CORS_ORIGIN_REGEX, SimConfig
from upstream_sim.server import DEFAULT_PORTS, LISTENERS, Simulator

_ENV = "UPSTREAM_SIM_"


def _env(name: str, default: str) -> str:
    return os.environ.get(_ENV + name, default)


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m upstream_sim",
        description="Simulator of the Avaturn Live, OpenAI Realtime (client secrets) and Cartesia (access "
        "tokens) APIs, one port each, plus a control API on a fourth port. Every option also reads an "
        f"environment variable {_ENV}<OPTION> (e.g. {_ENV}AVATURN_KEY).",
    )
    parser.add_argument("--host", default=_env("HOST", "127.0.0.1"), help="primary bind address (default 127.0.0.1)")
    parser.add_argument(
        "--also-host",
        action="append",
        default=_csv(_env("ALSO_HOST", "")),
        metavar="ADDR",
        help="also bind the three upstreams (not the control API) on this address, e.g. the docker bridge; repeatable",
    )
    for name in LISTENERS:
        parser.add_argument(
            f"--{name}-port",
            type=int,
            default=int(_env(f"{name.upper()}_PORT", str(DEFAULT_PORTS[name]))),
            help=f"port of the {name} listener (default {DEFAULT_PORTS[name]}; 0 = any free port)",
        )
    parser.add_argument("--avaturn-key", default=_env("AVATURN_KEY", "sim-avaturn-key"))
    parser.add_argument("--openai-key", default=_env("OPENAI_KEY", "sim-openai-key"))
    parser.add_argument("--cartesia-key", default=_env("CARTESIA_KEY", "sim-cartesia-key"))
    parser.add_argument(
        "--avatars",
        default=_env("AVATARS", ""),
        help="comma-separated avatar ids Avaturn accepts (others get 410); default: any id",
    )
    parser.add_argument("--gone-avatars", default=_env("GONE_AVATARS", ""), help="comma-separated ids answered 410")
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=_csv(_env("CORS_ORIGINS", "")),
        metavar="ORIGIN",
        help="extra exact origin allowed on /_sdk/ (repeatable; '*' = any); any localhost origin is always allowed",
    )
    parser.add_argument("--keep-alive-timeout", type=int, default=int(_env("KEEP_ALIVE_TIMEOUT", "60")))
    parser.add_argument(
        "--log-level", default=_env("LOG_LEVEL", "warning"), choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument("--access-log", action="store_true", default=_env("ACCESS_LOG", "") not in ("", "0"))
    parser.add_argument("--ready-file", default=_env("READY_FILE", ""), help="write the URLs as JSON here when ready")
    return parser


def config_from_args(args: argparse.Namespace) -> SimConfig:
    avatars = _csv(args.avatars)
    return SimConfig(
        avaturn_key=args.avaturn_key,
        openai_key=args.openai_key,
        cartesia_key=args.cartesia_key,
        avatars=frozenset(avatars) if avatars else None,
        gone_avatars=frozenset(_csv(args.gone_avatars)),
        cors_origins=tuple(args.cors_origin),
        cors_origin_regex=DEFAULT_CORS_ORIGIN_REGEX,
        keep_alive_timeout=args.keep_alive_timeout,
        access_log=args.access_log,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    simulator = Simulator(
        config_from_args(args),
        host=args.host,
        ports={name: getattr(args, f"{name}_port") for name in LISTENERS},
        also_hosts=args.also_host,
        log_level=args.log_level,
    )
    try:
        simulator.bind()
    except (OSError, ValueError) as exc:
        print(f"upstream_sim: cannot bind: {exc}", file=sys.stderr)
        return 2

    def on_ready() -> None:
        listing = " ".join(f"{name}={','.join(urls)}" for name, urls in simulator.all_urls.items())
        if args.ready_file:
            payload = {"pid": os.getpid(), "urls": simulator.urls, "all_urls": simulator.all_urls}
            tmp = f"{args.ready_file}.tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(payload, handle)
            os.replace(tmp, args.ready_file)
        print(f"upstream_sim ready pid={os.getpid()} {listing}", flush=True)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, simulator.request_stop)
        await simulator.serve(on_ready=on_ready)

    asyncio.run(run())
    print("upstream_sim stopped", flush=True)
    return 0
