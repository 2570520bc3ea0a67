"""`musegen daw install reaper|live|bitwig [--dir DIR]`: copy a host's scripts (bridges/daw/<host>/)
to where that host looks for them, and print the steps left to do inside the host (docs/daw.md)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

HOSTS = ("reaper", "live", "bitwig")
SOURCE = Path(__file__).resolve().parents[1] / "daw"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("daw", help="install the REAPER, Ableton Live or Bitwig scripts (docs/daw.md)")
    dsub = p.add_subparsers(dest="daw_command", metavar="ACTION", required=True)
    i = dsub.add_parser("install", help="copy a host's scripts where it finds them, print what is left to do")
    i.add_argument("host", choices=HOSTS, help="the DAW")
    i.add_argument("--dir", type=Path, default=None,
                   help="the host's folder to install into (default: the usual one for this system; "
                   "a musegen/ folder is made inside it)")
    i.add_argument("--platform", choices=("linux", "darwin", "win32"), default=None,
                   help="whose usual folder to use (default: this machine's)")
    i.set_defaults(func=run_install)


def host_folder(host: str, platform: str, home: Path, env: dict[str, str]) -> Path | None:
    """Where `host` looks for user scripts on `platform`, or None where it does not run."""
    docs = home / "Documents"
    if host == "reaper":  # REAPER's resource path: Options > Show REAPER resource path
        return {"linux": home / ".config" / "REAPER" / "Scripts",
                "darwin": home / "Library" / "Application Support" / "REAPER" / "Scripts",
                "win32": Path(env.get("APPDATA", home / "AppData" / "Roaming")) / "REAPER" / "Scripts"}[platform]
    if host == "live":  # Live's User Library (Preferences > Library); Live has no Linux version
        return {"darwin": home / "Music" / "Ableton" / "User Library",
                "win32": docs / "Ableton" / "User Library"}.get(platform)
    return {"linux": home / "Bitwig Studio" / "Controller Scripts",  # Settings > Locations
            "darwin": docs / "Bitwig Studio" / "Controller Scripts",
            "win32": docs / "Bitwig Studio" / "Controller Scripts"}[platform]


STEPS = {
    "reaper": ["Start the server: musegen serve --session ~/Music/song",
               "In REAPER: Actions > Show action list > New action > Load ReaScript..., pick every "
               "musegen_*.lua in {dest} (one action each)",
               "Run 'musegen_settings.lua' once: style, bars, variations, temperature, server port",
               "Select a MIDI item and run 'musegen_continue.lua' (bind it to a key or a toolbar button)"],
    "live": ["Start the server: musegen serve --session ~/Music/song --reply-port 9001",
             "In Live 12 (Suite, or Standard with Max for Live): open a MIDI clip, Generate tab > "
             "Max MIDI Generator > Edit (opens Max)",
             "In Max: File > Open {dest}/musegen-miditool.maxpat, copy its objects into the device, "
             "keep musegen-miditool.js next to the saved .amxd (or in Max's search path), save",
             "Press the tool's Generate button: continue; pick a take with the take selector"],
    "bitwig": ["Start the server: musegen serve --session ~/Music/song --reply-port 9001",
               "In Bitwig Studio: Settings > Controllers > Add controller > musegen > musegen",
               "Select a clip; in the controller's panel press Continue; pick a take with Take"],
}


def run_install(args: argparse.Namespace) -> int:
    from musegen.errors import ParameterError

    platform = args.platform or ("darwin" if sys.platform == "darwin" else
                                 "win32" if sys.platform.startswith("win") else "linux")
    base = args.dir or host_folder(args.host, platform, Path.home(), dict(os.environ))
    src = SOURCE / args.host
    if base is None:
        print(f"musegen daw install: {args.host} has no usual folder on {platform}; "
              f"the files are in {src}. Copy them by hand, or give --dir DIR.")
        _steps(args.host, src)
        return 0
    if args.dir is not None and not args.dir.is_dir():
        raise ParameterError(f"--dir {args.dir} is not a folder")
    dest = base / "musegen"
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for f in sorted(src.iterdir()):
        if f.is_file():
            shutil.copy2(f, dest / f.name)
            copied.append(f.name)
    print(f"musegen daw install: {len(copied)} files copied to {dest}: {', '.join(copied)}")
    _steps(args.host, dest)
    return 0


def _steps(host: str, dest: Path) -> None:
    for n, step in enumerate(STEPS[host], 1):
        print(f"  {n}. {step.format(dest=dest)}")
    print("  (docs/daw.md: every step, and what to check when it does not work)")
