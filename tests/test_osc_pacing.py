"""Replies are paced (`bridges.osc.pacing`): a burst of notes must not overrun a small UDP
receive buffer that its reader drains between ticks, as a DAW's does."""

import socket
import threading
import time

import pytest

from bridges.osc.pacing import Pacer


def test_the_bucket_lets_a_burst_go_then_holds_the_rate():
    now = [0.0]
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    p = Pacer(1000, 500, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        p.wait(100)  # 500 bytes: the burst, no waiting
    assert slept == []
    p.wait(100)  # 100 bytes over: 0.1 s at 1000 B/s
    assert slept == [pytest.approx(0.1)]
    now[0] += 0.25  # idle: 250 bytes refilled
    p.wait(200)
    assert len(slept) == 1 and p.waited_s == pytest.approx(0.1)
    with pytest.raises(ValueError, match="rate"):
        Pacer(0, 10)


def _blast(n: int, pacer: Pacer | None) -> int:
    """Send n 100-byte datagrams to a receiver with a 64 KiB buffer that drains it every 10 ms
    (a host's tick); how many arrived."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    got = [0]
    done = threading.Event()

    def read():
        quiet = 0
        while quiet < 20:  # 0.2 s with nothing new after the sender is done: all in
            time.sleep(0.01)
            before = got[0]
            try:
                while True:
                    rx.recv(2048)
                    got[0] += 1
            except BlockingIOError:
                pass
            quiet = quiet + 1 if done.is_set() and got[0] == before else 0

    t = threading.Thread(target=read)
    t.start()
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    payload = b"x" * 100
    for _ in range(n):
        if pacer is not None:
            pacer.wait(len(payload))
        tx.sendto(payload, rx.getsockname())
    done.set()
    t.join(60)
    tx.close()
    rx.close()
    return got[0]


def test_paced_notes_all_arrive_where_an_unpaced_burst_loses_some():
    n = 800  # 6 takes of 8 bars of chorale notes
    assert _blast(n, None) < n  # the failure pacing prevents (UDP drops silently)
    assert _blast(n, Pacer(2000, 32)) == n
