"""DAW side: the Pure Data patch bridges/daw/musegen.pd, run headless (`pd -nogui`), against a real
`musegen serve` on loopback with the tiny model. A forwarding UDP socket between the two records
the exact datagrams the patch sends; the patch's own prints show what it got back."""

import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pythonosc.osc_message import OscMessage

from musegen import Clip
from musegen.examples import example_path
from musegen.session import Session

ROOT = Path(__file__).parents[1]
PATCH = ROOT / "bridges" / "daw" / "musegen.pd"


def _udp(port: int = 0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    return s


def _free_port() -> int:
    s = _udp()
    port = s.getsockname()[1]
    s.close()
    return port


def _lines(stream, into: list) -> threading.Thread:
    t = threading.Thread(target=lambda: into.extend(iter(stream.readline, "")), daemon=True)
    t.start()
    return t


def _wait_for(lines: list, prefix: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ln in list(lines):
            if ln.startswith(prefix):
                return ln
        time.sleep(0.05)
    raise AssertionError(f"no {prefix!r} line; got: {''.join(lines[-15:])}")


def _args(line: str) -> list[str]:
    """`musegen-done: list pd1 t0002 /a.mid` -> ['pd1', 't0002', '/a.mid'] (Pd's print format)."""
    words = line.split(":", 1)[1].split()
    return words[1:] if words and words[0] in ("list", "symbol") else words


def test_pd_patch_against_musegen_serve(tmp_path, tiny_model_dir):
    if not shutil.which("pd"):
        pytest.skip("Pure Data not installed (apt-get install puredata-core; .ci/run does this)")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(example_path("folk"), inbox / "tune.mid")
    folder = tmp_path / "song"
    pd_port = _free_port()
    serve = subprocess.Popen([sys.executable, "-m", "bridges.cli", "serve", "--osc-port", "0",
                              "--reply-port", str(pd_port), "--session", str(folder),
                              "--model", str(tiny_model_dir), "--device", "cpu", "--allow", str(inbox)],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    serve_out: list[str] = []
    _lines(serve.stdout, serve_out)
    pd = None
    proxy = _udp()
    proxy.settimeout(0.2)
    sent: list[bytes] = []
    stop = threading.Event()
    try:
        line = _wait_for(serve_out, "musegen serve: listening", 120)
        server_port = int(line.split("udp://")[1].split()[0].rsplit(":", 1)[1])

        def forward():  # Pd -> (recorded) -> server; the server replies straight to Pd's port
            while not stop.is_set():
                try:
                    data, _ = proxy.recvfrom(65536)
                except TimeoutError:
                    continue
                sent.append(data)
                proxy.sendto(data, ("127.0.0.1", server_port))

        threading.Thread(target=forward, daemon=True).start()
        msgs = (f"musegen-connect 127.0.0.1 {proxy.getsockname()[1]}; musegen-listen {pd_port}; "
                "musegen continue path tune.mid bars 2 variations 2 seed 3")
        pd = subprocess.Popen(["pd", "-nogui", "-noaudio", "-nomidi", "-stderr", "-send", msgs, str(PATCH)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        pd_out: list[str] = []
        _lines(pd.stdout, pd_out)

        # what the patch sent: one /musegen/continue with its own id and the key/value pairs
        done = _wait_for(pd_out, "musegen-done:", 180)
        [req] = [OscMessage(d) for d in sent]
        assert req.address == "/musegen/continue"
        assert list(req.params) == ["pd1", "path", "tune.mid", "bars", 2.0, "variations", 2.0, "seed", 3.0]
        assert sent[0][sent[0].index(b",")::].startswith(b",ssssfsfsf\0")

        # what came back, as the patch printed it: ack, progress, one take per variation, done
        assert _args(_wait_for(pd_out, "musegen-ack:", 5)) == ["pd1"]
        assert any(ln.startswith("musegen-progress: pd1 ") for ln in pd_out), pd_out
        assert sum(ln.startswith("musegen-take:") for ln in pd_out) == 2
        assert not any(ln.startswith("musegen-error:") for ln in pd_out), pd_out
        rid, take_id, *paths = _args(done)
        assert rid == "pd1" and take_id.startswith("t") and len(paths) == 2
        for p in paths:
            assert Path(p).is_relative_to(folder.resolve() / "takes")
            assert Clip.load(p).n_bars == 2
    finally:
        stop.set()
        if pd is not None:
            pd.kill()  # Pd never exits by itself
            pd.wait(10)
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(30) == 0, "".join(serve_out)
        proxy.close()
    with Session.open(folder, readonly=True) as s:  # the journal has Pd's request and its takes
        req_entry = s.requests()["pd1"]
        assert req_entry["operation"] == "continue" and req_entry["params"]["bars"] == 2
        takes = s.takes()
        assert [t.operation for t in takes] == ["import", "continue", "continue"]
        assert takes[0].source and takes[0].source.endswith("tune.mid")
        assert {str(t.midi_path) for t in takes[1:]} == set(paths)
