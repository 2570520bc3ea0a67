"""The token vocabulary: one object of named, contiguous ranges with asserted invariants.

Run `python -m musegen.tokenizer.vocab` to print it.

The language (musegen-REMI) is a REMI-family encoding:

    BOS (TRACK_i PROGRAM_p)+                      header: one declaration per track
    ( BAR [TIMESIG] [TEMPO]                        one BAR per bar, silent bars included
      ( POSITION ( [TRACK] [VELOCITY] PITCH DURATION )+ )* )*
    EOS

TRACK and VELOCITY are *state* tokens: the current track resets to 0 and the current velocity
to `DEFAULT_VELOCITY_BIN` at every BAR, and they are written only where they change, so a
one-voice folk tune spends three tokens per note (POSITION, PITCH, DURATION) and every bar
can be decoded on its own. TIMESIG/TEMPO are written at the first bar and where they change.

Infilling a bar range uses fill-in-the-middle markers:

    header prefix-bars FILL suffix-bars FILL_START middle-bars FILL_END
"""

from __future__ import annotations

from dataclasses import dataclass, field

TICKS_PER_QUARTER = 12  # the grid: 16ths (3) and eighth-note triplets (4) are exact
MAX_BAR_QUARTERS = 8
MAX_POSITIONS = TICKS_PER_QUARTER * MAX_BAR_QUARTERS
MAX_TRACKS = 16
N_VELOCITY_BINS = 8
DEFAULT_VELOCITY_BIN = 5
DRUM_PROGRAM = 128

# Durations in grid ticks: exact up to a half note, then coarser.
DURATIONS: tuple[int, ...] = (
    *range(1, 13), 14, 15, 16, 18, 20, 21, 22, 24, 27, 30, 33, 36, 42, 48,
    54, 60, 66, 72, 84, 96, 108, 120, 144, 168, 192,
)
TEMPOS_QPM: tuple[float, ...] = tuple(
    round(30.0 * (300.0 / 30.0) ** (i / 31), 2) for i in range(32)
)


def _time_signatures() -> tuple[tuple[int, int], ...]:
    out = []
    for den in (1, 2, 4, 8, 16):
        for num in range(1, 17):
            quarters = 4 * num / den
            if quarters <= MAX_BAR_QUARTERS and (TICKS_PER_QUARTER * 4 * num) % den == 0:
                out.append((num, den))
    return tuple(out)


TIME_SIGNATURES = _time_signatures()


@dataclass(frozen=True)
class Vocab:
    """Named ranges of token ids. Two vocabularies can coexist (no globals)."""

    specials: tuple[str, ...] = ("PAD", "BOS", "EOS", "FILL", "FILL_START", "FILL_END", "BAR")
    n_positions: int = MAX_POSITIONS
    n_tracks: int = MAX_TRACKS
    n_programs: int = 129  # 0..127 + drums
    n_pitches: int = 128
    n_velocities: int = N_VELOCITY_BINS
    durations: tuple[int, ...] = DURATIONS
    tempos_qpm: tuple[float, ...] = TEMPOS_QPM
    time_signatures: tuple[tuple[int, int], ...] = TIME_SIGNATURES
    ranges: dict[str, range] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        sizes = [
            ("special", len(self.specials)),
            ("timesig", len(self.time_signatures)),
            ("tempo", len(self.tempos_qpm)),
            ("position", self.n_positions),
            ("track", self.n_tracks),
            ("program", self.n_programs),
            ("velocity", self.n_velocities),
            ("pitch", self.n_pitches),
            ("duration", len(self.durations)),
        ]
        ranges, start = {}, 0
        for name, size in sizes:
            ranges[name] = range(start, start + size)
            start += size
        object.__setattr__(self, "ranges", ranges)
        # hot lookups (the grammar and the codec ask per token): computed once, not per call
        object.__setattr__(self, "_special_ids", {n: i for i, n in enumerate(self.specials)})
        object.__setattr__(self, "_size", start)
        object.__setattr__(self, "token_kinds", tuple(n for n, r in ranges.items() for _ in r))
        assert list(self.durations) == sorted(set(self.durations)), "durations sorted, unique"
        assert all(d > 0 for d in self.durations)
        assert self.specials[0] == "PAD", "PAD must be id 0"
        assert ranges["duration"].stop == self.size

    # named ids ---------------------------------------------------------------
    def special(self, name: str) -> int:
        try:
            return self._special_ids[name]
        except KeyError:
            raise ValueError(f"no special token {name!r} in {self.specials}") from None

    @property
    def pad(self) -> int:
        return self.special("PAD")

    @property
    def bos(self) -> int:
        return self.special("BOS")

    @property
    def eos(self) -> int:
        return self.special("EOS")

    @property
    def bar(self) -> int:
        return self.special("BAR")

    @property
    def fill(self) -> int:
        return self.special("FILL")

    @property
    def fill_start(self) -> int:
        return self.special("FILL_START")

    @property
    def fill_end(self) -> int:
        return self.special("FILL_END")

    @property
    def default_velocity_bin(self) -> int:
        """The velocity in force at every BAR (bin of velocity ~88, mezzo-forte)."""
        return self.n_velocities * DEFAULT_VELOCITY_BIN // N_VELOCITY_BINS

    def velocity_of_bin(self, i: int) -> int:
        """Centre of velocity bin `i` (bins split 0..127 evenly)."""
        return min(127, (2 * i + 1) * 64 // self.n_velocities)

    @property
    def size(self) -> int:
        return self._size

    def id(self, kind: str, index: int) -> int:
        r = self.ranges[kind]
        if not 0 <= index < len(r):
            raise ValueError(f"{kind} index {index} outside 0..{len(r) - 1}")
        return r.start + index

    def kind(self, token: int) -> str:
        if 0 <= token < self._size:
            return self.token_kinds[token]
        raise ValueError(f"token id {token} outside the vocabulary of {self.size}")

    def index(self, token: int) -> int:
        return token - self.ranges[self.kind(token)].start

    def describe(self, token: int) -> str:
        kind, i = self.kind(token), self.index(token)
        if kind == "special":
            return self.specials[i]
        if kind == "timesig":
            n, d = self.time_signatures[i]
            return f"TIMESIG_{n}/{d}"
        if kind == "tempo":
            return f"TEMPO_{self.tempos_qpm[i]:g}"
        if kind == "duration":
            return f"DURATION_{self.durations[i]}"
        if kind == "program":
            return "PROGRAM_DRUMS" if i == DRUM_PROGRAM else f"PROGRAM_{i}"
        return f"{kind.upper()}_{i}"

    def to_dict(self) -> dict:
        return {
            "specials": list(self.specials),
            "n_positions": self.n_positions,
            "n_tracks": self.n_tracks,
            "n_programs": self.n_programs,
            "n_pitches": self.n_pitches,
            "n_velocities": self.n_velocities,
            "durations": list(self.durations),
            "tempos_qpm": list(self.tempos_qpm),
            "time_signatures": [list(t) for t in self.time_signatures],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Vocab:
        return cls(
            specials=tuple(d["specials"]),
            n_positions=d["n_positions"],
            n_tracks=d["n_tracks"],
            n_programs=d["n_programs"],
            n_pitches=d["n_pitches"],
            n_velocities=d["n_velocities"],
            durations=tuple(d["durations"]),
            tempos_qpm=tuple(d["tempos_qpm"]),
            time_signatures=tuple(tuple(t) for t in d["time_signatures"]),
        )


if __name__ == "__main__":  # pragma: no cover - a printout for humans
    v = Vocab()
    print(f"musegen-REMI vocabulary: {v.size} tokens")
    for name, r in v.ranges.items():
        print(f"  {name:<9} {r.start:>4}..{r.stop - 1:<4} ({len(r)}) "
              f"{v.describe(r.start)} .. {v.describe(r.stop - 1)}")
