"""`musegen midi`: call and response over live MIDI ports (set-up: docs/midi.md)."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("midi", help="play a phrase into a MIDI port, hear it continued",
                       description="Opens the virtual ports '<name> in' and '<name> out'. Play a "
                       "phrase into the input; after a silence (or the --end-cc controller) the "
                       "continuation plays on the output, in tempo: following MIDI clock when "
                       "the host sends it, else --bpm.")
    p.add_argument("--session", type=Path, default=None,
                   help="session folder for every phrase and answer (required unless --list)")
    p.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    p.add_argument("--name", default="musegen", help="virtual port name prefix")
    p.add_argument("--api", default="auto", choices=("auto", "alsa", "jack", "coremidi", "winmm"),
                   help="MIDI system (auto: ALSA, then JACK on Linux)")
    p.add_argument("--in-port", default=None,
                   help="open this existing input instead of a virtual one (default: a virtual port)")
    p.add_argument("--out-port", default=None,
                   help="open this existing output instead of a virtual one (default: a virtual port)")
    p.add_argument("--list", action="store_true", help="list existing ports and exit")
    p.add_argument("--bpm", type=float, default=120.0, help="tempo when no MIDI clock arrives")
    p.add_argument("--silence", type=float, default=2.0, help="seconds of silence that end a phrase")
    p.add_argument("--end-cc", type=int, default=None,
                   help="controller number that ends a phrase (default: silence alone ends it)")
    p.add_argument("--bars", type=int, default=4, help="bars in each answer")
    p.add_argument("--beats-per-bar", type=int, default=4, help="beats in a bar of the phrase you play")
    p.add_argument("--style", default=None, help="style of the answers (default: none, the model's unstyled voice)")
    p.add_argument("--in-channel", type=int, default=None,
                   help="listen to MIDI channel 1-16 only (default: every channel)")
    p.add_argument("--out-channel", type=int, default=1, help="answer on MIDI channel 1-16")
    p.add_argument("--temperature", type=float, default=None, help="lower = safer, higher = wilder (default: 1.0)")
    p.add_argument("--seed", type=int, default=None,
                   help="same seed + phrase = same answer (default: a new seed each time)")
    p.add_argument("--key", default=None, help="lock answers to a key, e.g. 'D minor' (default: no lock)")
    p.set_defaults(func=run_midi)


def run_midi(args: argparse.Namespace) -> int:
    from bridges.midi.ports import list_ports, open_ports
    from bridges.midi.responder import CallAndResponse, ResponderConfig, run
    from musegen.errors import ParameterError
    from musegen.session import Session
    from musegen.studio import Studio

    if args.list:
        print(json.dumps(list_ports(args.api), indent=1))
        return 0
    if args.session is None:
        raise ParameterError("musegen midi needs --session DIR (every phrase and answer is kept)")
    for name in ("in_channel", "out_channel"):
        v = getattr(args, name)
        if v is not None and not 1 <= v <= 16:
            raise ParameterError(f"--{name.replace('_', '-')} must be 1..16, got {v}")
    params = {k: getattr(args, k) for k in ("temperature", "seed", "key") if getattr(args, k) is not None}
    try:
        config = ResponderConfig(bars=args.bars, style=args.style, bpm=args.bpm,
                                 silence_s=args.silence, end_cc=args.end_cc,
                                 in_channel=None if args.in_channel is None else args.in_channel - 1,
                                 out_channel=args.out_channel - 1,
                                 beats_per_bar=args.beats_per_bar, params=params)
    except ValueError as e:
        raise ParameterError(str(e)) from None
    studio = Studio(model=args.model, device=args.device)
    if args.style is not None:
        studio.style_index(args.style)  # unknown style: fail now, not at the first phrase
    inp, out, api = open_ports(args.name, api=args.api, in_port=args.in_port, out_port=args.out_port)
    session = Session.open(args.session)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    responder = CallAndResponse(studio, out, session=session, config=config,
                                log=lambda m: print(f"musegen midi: {m}", flush=True))
    print(f"musegen midi: listening on '{getattr(inp, 'name', args.in_port)}', answering on "
          f"'{getattr(out, 'name', args.out_port)}' ({api}); {args.bars} bar answers after "
          f"{args.silence:g} s of silence"
          + (f" or CC {args.end_cc}" if args.end_cc is not None else "")
          + f"; {args.bpm:g} bpm unless MIDI clock arrives. Ctrl-C to stop.", flush=True)
    try:
        run(responder, inp, stop)
    except KeyboardInterrupt:
        pass
    finally:
        inp.close()
        out.close()
        session.close()
    print(f"musegen midi: {len(responder.responses)} answer(s) in {session.folder}")
    return 0
