"""DAW side: the Pure Data patch bridges/daw/musegen.pd, run headless (`pd -nogui`), against a real
`musegen serve` on loopback with the tiny model. A forwarding UDP socket between the two records
the exact datagrams the patch sends; the patch's own prints show what it got back."""

import os
import re
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
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "HOME": str(tmp_path)})  # its ~/.musegen-pd-clock
        pd_out: list[str] = []
        _lines(pd.stdout, pd_out)

        # what the patch sent: one /musegen/continue with its own id and the key/value pairs
        done = _wait_for(pd_out, "musegen-done:", 180)
        [req] = [OscMessage(d) for d in sent]
        assert req.address == "/musegen/continue"
        first = req.params[0]  # pdYYYYMM-S-K-1: S, the second of the month the patch opened; K its opening
        assert re.fullmatch(r"pd\d{6}-\d+-1-1", first), first  # the first opening in this HOME
        assert list(req.params) == [first, "path", "tune.mid", "bars", 2.0, "variations", 2.0, "seed", 3.0]
        assert sent[0][sent[0].index(b",")::].startswith(b",ssssfsfsf\0")

        # what came back, as the patch printed it: ack, progress, one take per variation, done
        assert _args(_wait_for(pd_out, "musegen-ack:", 5)) == [first]
        assert any(ln.startswith(f"musegen-progress: {first} ") for ln in pd_out), pd_out
        assert sum(ln.startswith("musegen-take:") for ln in pd_out) == 2
        assert not any(ln.startswith("musegen-error:") for ln in pd_out), pd_out
        rid, take_id, *paths = _args(done)
        assert rid == first and take_id.startswith("t") and len(paths) == 2
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
        req_entry = s.requests()[first]
        assert req_entry["operation"] == "continue" and req_entry["params"]["bars"] == 2
        takes = s.takes()
        assert [t.operation for t in takes] == ["import", "continue", "continue"]
        assert takes[0].source and takes[0].source.endswith("tune.mid")
        assert {str(t.midi_path) for t in takes[1:]} == set(paths)


def _ids_sent_by_the_patch(n: int, home: Path, copies: int = 1) -> list[str]:
    """Open the patch headless (`copies` times in one Pd), have it send `n` requests to a plain
    UDP socket, return their ids (every copy hears `musegen status`: n * copies ids)."""
    sink = _udp()
    sink.settimeout(10)
    msgs = f"musegen-connect 127.0.0.1 {sink.getsockname()[1]}; " + "; ".join(["musegen status"] * n)
    opens = []  # Pd opens one file once: the other copies are the same patch under other names
    for k in range(1, copies):
        shutil.copy(PATCH, home / f"musegen-copy{k}.pd")
        opens += ["-open", str(home / f"musegen-copy{k}.pd")]
    pd = subprocess.Popen(["pd", "-nogui", "-noaudio", "-nomidi", "-stderr", *opens, "-send", msgs, str(PATCH)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env={**os.environ, "HOME": str(home)})
    try:
        return [OscMessage(sink.recvfrom(65536)[0]).params[0] for _ in range(n * copies)]
    finally:
        pd.kill()
        pd.communicate(timeout=10)
        sink.close()


def test_pd_patch_ids_do_not_restart_when_it_opens_again(tmp_path):
    """The ids of a patch opened again must not repeat the last opening's (a session's journal
    keys requests by id; `pd1` every time made each opening's requests collide)."""
    if not shutil.which("pd"):
        pytest.skip("Pure Data not installed (apt-get install puredata-core; .ci/run does this)")
    first = _ids_sent_by_the_patch(2, tmp_path)
    time.sleep(max(0.0, 1.05 - time.time() % 1))  # the stamp has a resolution of one second
    again = _ids_sent_by_the_patch(2, tmp_path)
    for ids in (first, again):
        assert all(re.fullmatch(r"pd\d{6}-\d+-\d+-\d+", i) for i in ids), ids
        assert ids[0] != ids[1] and ids[0].rsplit("-", 1)[0] == ids[1].rsplit("-", 1)[0]
    assert not set(first) & set(again), (first, again)
    assert (tmp_path / ".musegen-pd-clock").is_file()  # where the stamp came from


def test_two_pd_patches_on_one_machine_never_share_an_id(tmp_path):
    """Two copies of the patch opened in the same second (in one Pd, and in two Pds at once) share
    S, the second they opened; each opening's count K (where its own byte, appended to
    ~/.musegen-pd-clock, landed: an O_APPEND write is atomic, so two Pds cannot read the same K)
    keeps their ids apart, so their requests never collide in a server run with --reply-port."""
    if not shutil.which("pd"):
        pytest.skip("Pure Data not installed (apt-get install puredata-core; .ci/run does this)")
    both = _ids_sent_by_the_patch(2, tmp_path, copies=2)  # one Pd, two patches: 4 requests
    assert len(set(both)) == 4, both
    assert len({i.rsplit("-", 1)[0] for i in both}) == 2  # two prefixes, one per patch
    out: list[list[str]] = []
    ts = [threading.Thread(target=lambda: out.append(_ids_sent_by_the_patch(2, tmp_path))) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    ids = [i for o in out for i in o]
    assert len(ids) == 4 and len(set(ids)) == 4, ids
    assert not set(ids) & set(both)
    assert (tmp_path / ".musegen-pd-clock").stat().st_size == 4  # four openings, one byte each
