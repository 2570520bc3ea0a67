"""Live MIDI bridge through the in-memory port double and a fake clock: phrase capture, the end
of a phrase (silence or a controller), answers in tempo at a set BPM and under MIDI clock, the
session record, and once with the tiny trained model."""

import shutil

import mido
import pytest

from bridges.midi import CallAndResponse, MemoryInput, MemoryOutput, MidiPortError, ResponderConfig, open_ports
from bridges.midi.phrase import PhraseCapture
from bridges.midi.playback import Player, channel_for, schedule
from bridges.midi.transport import Transport
from musegen import Clip, Note, Track
from musegen.session import Session
from tests.fakes import FakeStudio


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def on(p, v=100, ch=0):
    return mido.Message("note_on", note=p, velocity=v, channel=ch)


def off(p, ch=0):
    return mido.Message("note_off", note=p, channel=ch)


def drive(resp, clock, inp, until, step=0.002, events=()):
    """Advance the fake clock to `until`, feeding `events` [(time, msg)] when due."""
    events = sorted(events, key=lambda e: e[0])
    i = 0
    while clock.t < until:
        while i < len(events) and events[i][0] <= clock.t:
            inp.feed(events[i][1])
            i += 1
        for msg in inp.iter_pending():
            resp.feed(msg, clock.t)
        resp.tick(clock.t)
        clock.t += step


def notes_played(out):
    return [(t, m) for t, m in out.sent if m.type == "note_on"]


# ------------------------------------------------------------------ pieces
def test_transport_free_running_and_following_clock():
    tr = Transport(bpm=120)
    tr.reset(10.0)
    assert tr.beat(11.0) == pytest.approx(2.0) and not tr.following(11.0)
    tr.on_message("start", 20.0)
    interval = 60 / (90 * 24)  # 90 bpm
    for k in range(1, 49):
        tr.on_message("clock", 20.0 + k * interval)
    now = 20.0 + 48 * interval
    assert tr.following(now) and tr.bpm == pytest.approx(90, rel=1e-6)
    assert tr.beat(now) == pytest.approx(2.0)
    assert tr.beat(now + 0.1) == pytest.approx(2.0 + 1 / 24)  # never runs ahead of the clock
    assert not tr.following(now + 10.0)  # clock gone: runs free at 90 bpm from where it was
    assert tr.beat(now + 10.0) == pytest.approx(2.0 + 1 / 24 + (10.0 - tr.timeout_s) * 1.5)
    now += 10.0
    frozen = tr.beat(now)
    tr.on_message("stop", now)
    assert tr.beat(now + 5) == pytest.approx(frozen)
    tr.on_message("songpos", now, pos=16)
    assert tr.beat(now) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="bpm"):
        Transport(bpm=0)


def test_phrase_capture_silence_cc_and_bar_alignment():
    cap = PhraseCapture(silence_s=1.0, end_cc=64, beats_per_bar=4)
    cap.note_on(60, 90, 5.0, 0.0)
    cap.note_off(60, 6.0, 0.5)
    assert not cap.ended(1.4) and cap.ended(1.5)
    ph = cap.take(100.0, free_origin=False)
    assert ph.origin_beat == 4.0 and ph.end_beat == 8.0 and ph.n_bars == 1
    [n] = ph.clip.all_notes()
    assert (n.pitch, n.start_tick, n.duration_ticks) == (60, 480, 480)
    assert ph.clip.tempos[0].qpm == 100.0 and not cap.active
    cap.note_on(62, 80, 0.0, 10.0)
    cap.note_on(64, 0, 1.0, 10.1)  # velocity 0 = note off (of nothing held)
    assert not cap.ended(20.0)  # a held note keeps the phrase open
    cap.control(64, 127, 5.5, 10.5)  # the footswitch: ends now, cutting the held note
    assert cap.ended(10.5)
    ph = cap.take(120.0, free_origin=True)
    assert ph.n_bars == 2 and ph.clip.all_notes()[0].duration_ticks == 5.5 * 480


def test_schedule_and_player_keep_order_and_silence_on_panic():
    clip = Clip(tracks=(Track((Note(60, 90, 0, 480), Note(60, 80, 240, 480))),
                        Track((Note(36, 100, 0, 120),), is_drum=True)), length_ticks=1920)
    events = schedule(clip, 8.0, base_channel=2)
    assert [(e.beat, e.msg.type, e.msg.channel) for e in events][:3] == \
        [(8.0, "note_on", 2), (8.0, "note_on", 9), (8.25, "note_off", 9)]
    out = MemoryOutput(clock=lambda: 0.0)
    pl = Player(out)
    pl.play(events)
    assert pl.tick(7.99) == 0
    pl.tick(8.6)  # the re-struck 60 is released and struck again, and still sounds
    assert [(m.type, m.note) for _, m in out.sent] == [("note_on", 60), ("note_on", 36), ("note_off", 36),
                                                       ("note_off", 60), ("note_on", 60)]
    pl.panic()
    assert out.sent[-1][1].type == "note_off" and not pl.busy
    assert channel_for(8, False) == 8 and channel_for(9, False) == 10 and channel_for(0, True) == 9


# ---------------------------------------------------------------- responder
def test_call_and_response_at_a_set_bpm(tmp_path):
    clock, inp, studio = FakeClock(), MemoryInput(), FakeStudio()
    out = MemoryOutput(clock)
    with Session.open(tmp_path / "live") as session:
        resp = CallAndResponse(studio, out, session=session, background=False,
                               config=ResponderConfig(bars=2, bpm=120, silence_s=1.0, style="alpha",
                                                      params={"seed": 4}))
        t0 = clock.t + 0.5
        played = []
        for k in range(4):  # four quarter notes at 120 bpm: one bar
            played += [(t0 + k * 0.5, on(60 + k)), (t0 + k * 0.5 + 0.25, off(60 + k))]
        drive(resp, clock, inp, t0 + 8.0, events=played)
        [r] = resp.responses
        assert r.phrase.n_bars == 1 and r.phrase.clip.n_notes == 4
        got = [n.pitch for n in r.phrase.clip.all_notes()]
        assert got == [60, 61, 62, 63]
        clip, bars, style, kw = studio.calls[0]
        assert bars == 2 and style == "alpha" and kw == {"seed": 4}
        # the phrase ended at t0+2.75 (last note off 1.75 s + 1 s silence): beat 5.5 from the first
        # note, so the answer waits for the bar line at beat 8 = t0 + 4.0 s
        assert r.start_beat - r.phrase.origin_beat == pytest.approx(8.0)
        ons = notes_played(out)
        assert len(ons) == 8
        for i, (t, m) in enumerate(ons):
            assert m.note == 70 + i
            assert t == pytest.approx(t0 + 4.0 + i * 0.5, abs=0.003)  # in tempo, to the tick
        offs = [t for t, m in out.sent if m.type == "note_off"]
        assert offs[0] == pytest.approx(t0 + 4.25, abs=0.003)
        # the session has both: the phrase, and the answer as its child
        phrase_take, answer = session.takes()
        assert phrase_take.operation == "midi-in" and answer.parent == phrase_take.id
        assert (r.phrase_take, r.take) == (phrase_take.id, answer.id)
        assert Clip.load(answer.midi_path).n_notes == 8
        assert resp.idle


def test_call_and_response_follows_midi_clock_and_its_tempo_changes():
    clock, inp, studio = FakeClock(), MemoryInput(), FakeStudio()
    out = MemoryOutput(clock)
    resp = CallAndResponse(studio, out, background=False,
                           config=ResponderConfig(bars=1, bpm=60, silence_s=0.5, end_cc=20))
    events = [(clock.t, mido.Message("start"))]
    t, beat_s = clock.t, 60 / 100  # host plays at 100 bpm
    tick_times = []
    for k in range(1, 24 * 12):  # 12 beats of clock; from beat 6 on, the host goes to 150 bpm
        t += (beat_s if k <= 24 * 6 else 60 / 150) / 24
        tick_times.append(t)
        events.append((t, mido.Message("clock")))
    beat_at = {k: tick_times[k - 1] for k in range(1, len(tick_times) + 1)}
    # the musician plays beats 1..2 (clock beats, 0-based) of bar 1, then presses CC 20
    events += [(beat_at[24] + 0.001, on(67)), (beat_at[48] - 0.05, off(67)),
               (beat_at[48] + 0.01, mido.Message("control_change", control=20, value=127))]
    drive(resp, clock, inp, t + 0.1, step=0.001, events=events)
    [r] = resp.responses
    assert r.phrase.origin_beat == 0.0 and r.phrase.clip.all_notes()[0].start_tick == pytest.approx(480, abs=10)
    assert r.phrase.clip.tempos[0].qpm == pytest.approx(100, rel=0.02)
    assert r.start_beat == 4.0  # the bar after the phrase's bar, on the host's grid
    ons = notes_played(out)
    assert len(ons) == 4
    for i, (when, _) in enumerate(ons):  # on the host's beats: 4..7 at 100 bpm
        assert when == pytest.approx(beat_at[(4 + i) * 24], abs=0.003)
    assert resp.transport.bpm == pytest.approx(150, rel=0.02)


def test_stop_silences_and_errors_do_not_stop_the_bridge():
    clock, inp = FakeClock(), MemoryInput()
    out = MemoryOutput(clock)

    class Broken(FakeStudio):
        def continue_(self, clip, **kw):
            if not self.calls:
                self.calls.append(1)
                raise ValueError("style 'nope' unknown")
            return super().continue_(clip, **kw)

    resp = CallAndResponse(Broken(), out, background=False,
                           config=ResponderConfig(bars=4, silence_s=0.3))
    t0 = clock.t
    drive(resp, clock, inp, t0 + 1.0, events=[(t0, on(60)), (t0 + 0.2, off(60))])
    assert resp.errors == ["ValueError: style 'nope' unknown"] and not resp.responses
    drive(resp, clock, inp, t0 + 4.0, events=[(t0 + 1.5, on(62)), (t0 + 1.7, off(62))])
    assert len(resp.responses) == 1 and notes_played(out)  # answer from t0 + 3.5 s
    drive(resp, clock, inp, t0 + 4.1, events=[(t0 + 4.0, mido.Message("stop"))])
    assert not resp.player.busy
    sounding = {}
    for _, m in out.sent:
        sounding[m.note] = m.type == "note_on"
    assert not any(sounding.values())  # everything that sounded was released


def test_in_channel_filter(tmp_path):
    clock, inp = FakeClock(), MemoryInput()
    resp = CallAndResponse(FakeStudio(), MemoryOutput(clock), background=False,
                           config=ResponderConfig(silence_s=0.2, in_channel=3))
    drive(resp, clock, inp, clock.t + 1, events=[(clock.t, on(60, ch=0)), (clock.t + 0.1, off(60, ch=0))])
    assert not resp.responses and resp.idle
    drive(resp, clock, inp, clock.t + 1, events=[(clock.t, on(60, ch=3)), (clock.t + 0.1, off(60, ch=3))])
    assert len(resp.responses) == 1


def test_with_the_tiny_model_in_a_background_thread(tmp_path, tiny_model_dir):
    import time

    from musegen.studio import Studio

    studio = Studio(model=tiny_model_dir, device="cpu")
    clock, inp = FakeClock(), MemoryInput()
    out = MemoryOutput(clock)
    with Session.open(tmp_path / "live") as session:
        resp = CallAndResponse(studio, out, session=session, background=True,
                               config=ResponderConfig(bars=1, bpm=120, silence_s=0.5, params={"seed": 3}))
        t0 = clock.t
        events = [(t0 + k * 0.5, on(60 + 2 * k)) for k in range(4)] + \
                 [(t0 + k * 0.5 + 0.4, off(60 + 2 * k)) for k in range(4)]
        drive(resp, clock, inp, t0 + 3.0, events=events)
        deadline = time.monotonic() + 60
        while not resp.responses:  # the model runs in its own thread; the loop keeps ticking
            assert time.monotonic() < deadline, resp.errors
            time.sleep(0.01)  # (fake time stands still while the model thinks)
            drive(resp, clock, inp, clock.t + 0.004)
        [r] = resp.responses
        assert r.clip.n_bars == 1 and (r.start_beat - r.phrase.origin_beat) % 4 == 0
        drive(resp, clock, inp, clock.t + 5.0)
        assert len(notes_played(out)) == r.clip.n_notes
        assert [t.operation for t in session.takes()] == ["midi-in", "continue"]


def test_real_ports_fail_with_a_clear_message_without_a_jack_server(monkeypatch):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "musegen-no-such-server")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    with pytest.raises(MidiPortError, match="docs/midi.md"):
        open_ports("musegen-test", api="jack")
    with pytest.raises(MidiPortError, match="unknown MIDI API"):
        open_ports("musegen-test", api="bogus")


def test_real_virtual_ports_on_a_jack_dummy_server(tmp_path, monkeypatch):
    """Once through real ports: a JACK server with the dummy driver (no sound hardware), the
    bridge's virtual ports, and a second rtmidi client playing into it and listening to it."""
    import os
    import signal
    import subprocess
    import threading
    import time

    from bridges.midi.responder import run

    if not shutil.which("jackd"):
        pytest.skip("jackd not installed (apt-get install jackd2); the memory-port tests cover the logic")
    name = f"musegen-test-{os.getpid()}"
    env = {**os.environ, "JACK_NO_AUDIO_RESERVATION": "1"}
    jackd = subprocess.Popen(["jackd", "-n", name, "-d", "dummy", "-r", "48000", "-p", "256"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    monkeypatch.setenv("JACK_DEFAULT_SERVER", name)
    stop = threading.Event()
    ports = []
    try:
        backend = mido.Backend("mido.backends.rtmidi/UNIX_JACK", load=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                inp, out, api = open_ports("mgtest", api="jack")
                break
            except MidiPortError:
                assert time.monotonic() < deadline, "JACK dummy server did not come up"
                time.sleep(0.2)
        ports += [inp, out]
        assert api == "jack"
        to_bridge = backend.open_output(next(n for n in backend.get_output_names() if "mgtest in" in n))
        from_bridge = backend.open_input(next(n for n in backend.get_input_names() if "mgtest out" in n))
        ports += [to_bridge, from_bridge]
        resp = CallAndResponse(FakeStudio(), out, background=True,
                               config=ResponderConfig(bars=1, bpm=240, silence_s=0.3))
        loop = threading.Thread(target=run, args=(resp, inp, stop), daemon=True)
        loop.start()
        for k in range(4):  # a bar of quarter notes at 240 bpm
            to_bridge.send(on(60 + k))
            time.sleep(0.125)
            to_bridge.send(off(60 + k))
            time.sleep(0.125)
        got = []
        deadline = time.monotonic() + 10
        while len([m for _, m in got if m.type == "note_on"]) < 4 and time.monotonic() < deadline:
            for m in from_bridge.iter_pending():
                got.append((time.monotonic(), m))
            time.sleep(0.001)
        ons = [(t, m) for t, m in got if m.type == "note_on"]
        assert [m.note for _, m in ons] == [70, 71, 72, 73]
        gaps = [b[0] - a[0] for a, b in zip(ons, ons[1:])]
        assert all(abs(g - 0.25) < 0.06 for g in gaps), gaps  # in tempo, through JACK
    finally:
        stop.set()
        time.sleep(0.05)
        for p in ports:
            p.close()
        jackd.send_signal(signal.SIGTERM)
        jackd.wait(10)


# ------------------------------------------------------------ clock tempo
JACK_PERIOD_S = 256 / 48000  # the dummy server of docs/midi.md: 256 frames at 48 kHz


def clock_arrivals(bpm, seconds, start, *, period_s=JACK_PERIOD_S, jitter_s=0.001, seed=0,
                   late=(), first_after_s=None):
    """When MIDI clock from a host at `bpm` reaches the bridge: each tick sent on time +- jitter,
    delivered in period-sized batches (everything sent during a period arrives at its end, as
    JACK does), then stamped by a 1 ms poll loop. `late` = [(t, delay_s)]: a delivery held up,
    everything sent in [t, t + delay) arrives at once at t + delay. `first_after_s`: the first
    tick comes that soon after the start message (a host's first tick is often early)."""
    import math
    import random

    rng = random.Random(seed)
    interval = 60 / (bpm * 24)
    sent = [start + k * interval + rng.uniform(-jitter_s, jitter_s)
            for k in range(1, int(seconds / interval))]
    if first_after_s is not None:
        sent[0] = start + first_after_s
    out = []
    for s in sent:
        t = math.ceil(s / period_s) * period_s
        for t0, delay in late:
            if t0 <= s < t0 + delay:
                t = max(t, t0 + delay)
        out.append(math.ceil(t * 1000) / 1000)  # the poll loop's 1 ms
    return out


@pytest.mark.parametrize("frames", [256, 1024])
@pytest.mark.parametrize("bpm", [100, 120])
def test_clock_tempo_is_counted_over_a_window_not_read_from_tick_intervals(bpm, frames):
    """Under JACK a 100 bpm clock was logged as 94.1 and 120 as 117.6: batched delivery makes
    every tick interval a whole number of periods, and their median was taken as the tempo."""
    tr = Transport(bpm=60)
    tr.on_message("start", 10.0)
    ticks = clock_arrivals(bpm, 6.0, 10.0, period_s=frames / 48000, seed=bpm + frames,
                           late=[(12.0, 0.03), (14.5, 0.05)], first_after_s=0.0005)
    for k, t in enumerate(ticks, 1):
        tr.on_message("clock", t)
        if k >= 24 * 4:  # from one bar in, and through the held-up deliveries
            assert tr.bpm == pytest.approx(bpm, abs=0.5), (k, tr.bpm)
    assert tr.clip_bpm == pytest.approx(bpm, abs=0.5) and round(tr.clip_bpm, 1) == tr.clip_bpm
    assert tr.beat(ticks[-1]) == pytest.approx(len(ticks) / 24)  # position: still tick by tick


def test_clock_tempo_after_continue_and_a_tempo_change():
    tr = Transport(bpm=120)
    tr.on_message("start", 10.0)
    ticks = clock_arrivals(100, 3.0, 10.0)
    for t in ticks:
        tr.on_message("clock", t)
    assert tr.bpm == pytest.approx(100, abs=0.5)
    tr.on_message("stop", ticks[-1] + 0.01)
    # the host stops its clock for 3 s, then continues at 132 bpm; its first tick comes at once
    t_cont = ticks[-1] + 3.0
    tr.on_message("continue", t_cont)
    ticks = clock_arrivals(132, 4.0, t_cont, first_after_s=0.0002, seed=5)
    for k, t in enumerate(ticks, 1):
        tr.on_message("clock", t)
        if k >= 24 * 2:
            assert tr.bpm == pytest.approx(132, abs=0.5), (k, tr.bpm)
    # and a change while running is followed within the 2 s window
    t0 = ticks[-1]
    ticks = clock_arrivals(90, 3.0, t0, seed=6)
    for t in ticks:
        tr.on_message("clock", t)
    assert tr.bpm == pytest.approx(90, abs=0.5)
    assert Transport(bpm=123.45).clip_bpm == 123.45  # a set tempo is written as given


def test_the_phrase_carries_the_clock_tempo_through_jack_like_batches(tmp_path):
    """End to end through the memory ports: a host at 100 bpm, its clock delivered in JACK
    batches; the phrase (and so the clip the model continues, and the stored take) is at 100."""
    clock, inp, studio = FakeClock(), MemoryInput(), FakeStudio()
    out = MemoryOutput(clock)
    with Session.open(tmp_path / "live") as session:
        resp = CallAndResponse(studio, out, session=session, background=False,
                               config=ResponderConfig(bars=1, bpm=120, silence_s=0.5, end_cc=20))
        start = clock.t + 0.0011
        ticks = clock_arrivals(100, 12.0, start, seed=3)
        events = [(start, mido.Message("start"))] + [(t, mido.Message("clock")) for t in ticks]
        beat_s = 0.6
        # two bars of quarter notes from beat 4 (bar 2), then the footswitch
        events += [(start + (4 + k) * beat_s + 0.02, on(60 + k)) for k in range(8)]
        events += [(start + (4 + k) * beat_s + 0.3, off(60 + k)) for k in range(8)]
        events += [(start + 11.8 * beat_s, mido.Message("control_change", control=20, value=127))]
        drive(resp, clock, inp, ticks[-1], step=0.001, events=events)
        [r] = resp.responses
        qpm = r.phrase.clip.tempos[0].qpm
        assert qpm == pytest.approx(100, abs=0.5), qpm
        assert studio.calls[0][0].tempos[0].qpm == qpm  # the clip the model continues
        phrase_take = session.takes()[0]
        assert Clip.load(phrase_take.midi_path).tempos[0].qpm == pytest.approx(qpm, abs=0.01)
        assert r.phrase.origin_beat == 4.0 and r.phrase.n_bars == 2 and r.start_beat == 12.0
        ons = notes_played(out)
        assert len(ons) == 4
        for i, (when, _) in enumerate(ons):  # on the host's beats 12..15 (in delivery time)
            assert when == pytest.approx(ticks[(12 + i) * 24 - 1], abs=0.003)
