"""`musegen serve`: the OSC server for DAWs and controllers (address space: docs/osc.md)."""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from musegen.studio import Studio


def port(text: str) -> int:
    """An argparse type: a UDP port number 0..65535 (0: any free port), named in the error otherwise."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"port {n} is outside 0..65535")
    return n


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="answer OSC requests from a DAW (see docs/osc.md)",
                       description="Serve /musegen/* OSC requests over UDP. Every take lands in "
                       "the session folder; replies go to the sender unless --reply-port is set.")
    p.add_argument("--osc-port", type=port, default=9000, help="UDP port to listen on (default 9000)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; anything else is reachable from "
                   "other machines and prints a warning)")
    p.add_argument("--reply-host", default=None,
                   help="send every reply here instead of the sender (default: the sender)")
    p.add_argument("--reply-port", type=port, default=None, help="port for --reply-host (default: the sender's port)")
    p.add_argument("--session", type=Path, required=True, help="session folder (created if new)")
    p.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda or mps")
    p.add_argument("--lyric-model", default=None, metavar="PATH",
                   help="lyric model for /musegen/lyrics: any local Hugging Face causal-LM folder "
                   "(default: the shipped lyric model, loaded on the first request)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for decoding (default: all cores, at most 4; 1 on a busy machine)")
    p.add_argument("--allow", type=Path, action="append", default=[], metavar="DIR",
                   help="folder clients may name in paths (repeatable; the session folder is "
                   "always allowed; relative paths start at the first one)")
    p.add_argument("--max-bars", type=int, default=64, help="most bars one request may ask for")
    p.add_argument("--max-variations", type=int, default=8, help="most variations one request may ask for")
    p.add_argument("--max-queue", type=int, default=32, help="requests waiting, per worker")
    p.add_argument("--max-notes", type=int, default=20_000, help="notes per streamed clip")
    p.add_argument("--quiet", action="store_true", help="log nothing per request")
    p.set_defaults(func=run_serve)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_serve(args: argparse.Namespace) -> int:
    from bridges.commands.session import report_opening
    from bridges.osc.server import OscServer, default_limits
    from musegen.errors import ParameterError
    from musegen.session import Session

    reply_to = _check_args(args)
    if not _is_loopback(args.host):
        print(f"musegen serve: warning: binding {args.host}: other machines on the network can "
              "send requests and name files in the allowed folders", file=sys.stderr)
    studio, lyric_id = _open_studio(args)
    session = Session.open(args.session)
    report_opening(session, "musegen serve", sys.stdout)
    limits = default_limits(session.folder, args.allow, max_bars=args.max_bars,
                            max_variations=args.max_variations, max_queue=args.max_queue,
                            max_notes=args.max_notes)
    log = None if args.quiet else (lambda msg: print(f"musegen serve: {msg}", flush=True))
    server = OscServer(studio, session, host=args.host, port=args.osc_port, reply_to=reply_to,
                       limits=limits, log=log)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())  # finish cleanly under systemd & co.
    try:
        server.start()
        print(_listening_line(server.address, session.folder, len(session.takes()), studio.model_id,
                             lyric_id, reply_to), flush=True)
        server.serve_forever()
    except OSError as e:
        raise ParameterError(f"cannot listen on {args.host}:{args.osc_port}: {e.strerror or e}") from None
    finally:
        server.stop()
        session.close()
    return 0


def _check_args(args: argparse.Namespace) -> tuple[str, int] | None:
    """Refuse out-of-range options (ParameterError naming the option); the reply address or None."""
    from musegen.errors import ParameterError

    if args.threads is not None and not 1 <= args.threads <= 256:
        raise ParameterError(f"--threads must be in 1..256, got {args.threads}")
    for name in ("osc_port", "max_bars", "max_variations", "max_queue", "max_notes"):
        if getattr(args, name) < (0 if name == "osc_port" else 1):
            raise ParameterError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.reply_host is not None and args.reply_port is None:
        raise ParameterError("--reply-host needs --reply-port")
    return (args.reply_host or "127.0.0.1", args.reply_port) if args.reply_port else None


def _open_studio(args: argparse.Namespace) -> tuple[Studio, str | None]:
    """The Studio for the options, and the id of a user's lyric model (loaded now, so a bad
    folder fails at start) or None."""
    from bridges.commands.lyrics import quiet_hf_loading
    from musegen.studio import Studio

    studio = Studio(model=args.model, device=args.device, threads=args.threads,
                    lyric_model=args.lyric_model)
    if studio.device.type == "cpu" and args.threads:
        import torch

        torch.set_num_threads(studio.threads)  # the lyric model decodes outside the Studio's limit
    quiet_hf_loading()
    lyric_id = None
    if args.lyric_model is not None:  # a user's lyric model: load it now, so a bad folder fails here
        lyric_id = studio.lyric_lm.model_id
    return studio, lyric_id


def _listening_line(address: tuple[str, int], folder: Path, takes: int, model_id: str,
                    lyric_id: str | None, reply_to: tuple[str, int] | None) -> str:
    host, port = address
    return (f"musegen serve: listening on udp://{host}:{port} | session {folder} "
            f"({takes} takes) | model {model_id}"
            + (f" | lyric model {lyric_id}" if lyric_id else "")
            + (f" | replies to {reply_to[0]}:{reply_to[1]}" if reply_to else ""))
