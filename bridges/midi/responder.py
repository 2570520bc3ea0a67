"""Call and response: listen to a phrase, continue it with the model, play the answer in time.

`CallAndResponse` is driven from outside: `feed(message, now)` for every input message and
`tick(now)` often (every millisecond or so); `run()` is that loop over a real input port. Times
are seconds from one monotonic clock, so tests drive it with a fake clock and memory ports.

The answer starts on the bar line right after the phrase (phrase of 2 bars from bar 5 -> answer
from bar 7); if the model is still thinking by then, on the next bar line after it is done.
With a session, the phrase is stored as a take (`midi-in`) and the answer as its child.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import mido

from bridges.midi.phrase import Phrase, PhraseCapture
from bridges.midi.playback import Player, schedule
from bridges.midi.ports import InputPort, OutputPort
from bridges.midi.transport import Transport
from bridges.studio import Continues
from musegen.clip import Clip
from musegen.session import Session

REALTIME = ("clock", "start", "stop", "continue", "songpos")


@dataclass(frozen=True)
class ResponderConfig:
    bars: int = 4  # length of each answer
    style: str | None = None
    bpm: float = 120.0  # used when no MIDI clock arrives
    silence_s: float = 2.0  # a phrase ends after this long with nothing played
    end_cc: int | None = None  # ...or when this controller goes >= 64
    in_channel: int | None = None  # listen to one channel (0-15) or all
    out_channel: int = 0  # first output channel (more tracks use the next ones)
    beats_per_bar: int = 4
    params: dict = field(default_factory=dict)  # temperature, seed, key... for Studio.continue_

    def __post_init__(self) -> None:
        if not 1 <= self.bars <= 64:
            raise ValueError(f"bars must be in 1..64, got {self.bars}")
        if not 0.05 <= self.silence_s <= 60:
            raise ValueError(f"silence must be in 0.05..60 seconds, got {self.silence_s}")
        if self.end_cc is not None and not 0 <= self.end_cc <= 127:
            raise ValueError(f"end CC must be in 0..127, got {self.end_cc}")
        if self.in_channel is not None and not 0 <= self.in_channel <= 15:
            raise ValueError(f"input channel must be in 0..15, got {self.in_channel}")
        if not 0 <= self.out_channel <= 15:
            raise ValueError(f"output channel must be in 0..15, got {self.out_channel}")
        if not 1 <= self.beats_per_bar <= 16:
            raise ValueError(f"beats per bar must be in 1..16, got {self.beats_per_bar}")


@dataclass(frozen=True)
class Response:
    phrase: Phrase
    clip: Clip
    start_beat: float
    phrase_take: str | None = None
    take: str | None = None


class CallAndResponse:
    def __init__(self, studio: Continues, out: OutputPort, *, session: Session | None = None,
                 config: ResponderConfig | None = None, background: bool = True,
                 log: Callable[[str], None] | None = None) -> None:
        self.studio = studio
        self.session = session
        self.config = config or ResponderConfig()
        self.background = background
        self._log = log or (lambda _m: None)
        cfg = self.config
        self.transport = Transport(cfg.bpm)
        self.capture = PhraseCapture(cfg.silence_s, cfg.end_cc, cfg.beats_per_bar)
        self.player = Player(out)
        self.responses: list[Response] = []
        self.errors: list[str] = []
        self._started = False
        self._job: threading.Thread | None = None
        self._job_phrase: Phrase | None = None
        self._job_result: tuple[Clip, str | None, str | None] | None = None
        self._job_error: str | None = None

    # ------------------------------------------------------------------ input
    def feed(self, msg: mido.Message, now: float) -> None:
        self._start(now)
        t = msg.type
        if t in REALTIME:
            self.transport.on_message(t, now, getattr(msg, "pos", 0))
            if t == "stop":
                self.player.panic()
            return
        if self.config.in_channel is not None and getattr(msg, "channel", None) != self.config.in_channel:
            return
        beat = self.transport.beat(now)
        if t == "note_on":
            self.capture.note_on(msg.note, msg.velocity, beat, now)
        elif t == "note_off":
            self.capture.note_off(msg.note, beat, now)
        elif t == "control_change":
            self.capture.control(msg.control, msg.value, beat, now)

    # ------------------------------------------------------------------- time
    def tick(self, now: float) -> None:
        """Start a generation when a phrase has ended, schedule a finished one, play what's due."""
        self._start(now)
        if self._job is None and self.capture.ended(now):
            free = not self.transport.following(now)
            bpm = self.transport.clip_bpm  # the clip generated from carries the best estimate
            phrase = self.capture.take(bpm, free_origin=free)
            self._log(f"phrase: {phrase.n_bars} bar(s), {phrase.clip.n_notes} notes at "
                      f"{bpm:g} bpm ({'set tempo' if free else 'MIDI clock'})")
            self._submit(phrase)
        if self._job is not None and not self._job.is_alive():
            self._finish(now)
        self.player.tick(self.transport.beat(now))

    def _start(self, now: float) -> None:
        if not self._started:
            self.transport.reset(now)
            self._started = True

    def _submit(self, phrase: Phrase) -> None:
        self._job_phrase, self._job_result, self._job_error = phrase, None, None
        self._job = threading.Thread(target=self._generate, args=(phrase,), name="midi-generate",
                                     daemon=True)
        if self.background:
            self._job.start()
        else:  # tests: generate inline, deterministic
            self._job.run()

    def _generate(self, phrase: Phrase) -> None:
        try:
            phrase_id = None
            if self.session is not None:
                phrase_id = self.session.import_clip(phrase.clip, operation="midi-in",
                                                     source="midi").id
            takes = self.studio.continue_(phrase.clip, bars=self.config.bars, variations=1,
                                          style=self.config.style, **self.config.params)
            take_id = None
            if self.session is not None:
                take_id = self.session.add_takes(takes[:1], parent=phrase_id)[0].id
            self._job_result = (takes[0].clip, phrase_id, take_id)
        except Exception as e:  # reported in tick(); the bridge keeps listening
            self._job_error = f"{type(e).__name__}: {e}"

    def _finish(self, now: float) -> None:
        phrase, result, error = self._job_phrase, self._job_result, self._job_error
        self._job = self._job_phrase = None
        if error is not None or result is None or phrase is None:
            self.errors.append(error or "generation produced nothing")
            self._log(f"error: {self.errors[-1]}")
            return
        clip, phrase_id, take_id = result
        start = phrase.end_beat
        beat_now = self.transport.beat(now)
        if start < beat_now:  # too late for the next bar line: take the one after the model
            bpb = self.config.beats_per_bar
            start = phrase.origin_beat + math.ceil((beat_now - phrase.origin_beat) / bpb) * bpb
        self.player.play(schedule(clip, start, self.config.out_channel))
        self.responses.append(Response(phrase, clip, start, phrase_id, take_id))
        self._log(f"answer {take_id or ''} ({clip.n_bars} bar(s), {clip.n_notes} notes) from "
                  f"beat {start:.2f}")

    @property
    def idle(self) -> bool:
        """Nothing captured, generating or playing."""
        return self._job is None and not self.capture.active and not self.player.busy

    def close(self) -> None:
        if self._job is not None and self._job.is_alive():
            self._job.join(timeout=60)
        self.player.panic()


def run(responder: CallAndResponse, inp: InputPort, stop: threading.Event,
        clock: Callable[[], float] = time.monotonic, poll_s: float = 0.001) -> None:
    """Read the input port and tick until `stop` is set; silences the output on the way out."""
    try:
        while not stop.is_set():
            now = clock()
            for msg in inp.iter_pending():
                responder.feed(msg, now)
            responder.tick(clock())
            stop.wait(poll_s)
    finally:
        responder.close()
