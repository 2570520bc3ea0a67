"""What the musician gave comes back exactly: tempo map, time signatures, key signatures,
track names, programs and channels, through every operation, read back from the written MIDI
file with mido (not through musegen's own loader)."""

from __future__ import annotations

from pathlib import Path

import mido
import pytest

from musegen import Clip
from musegen.carry import carry, splice
from musegen.clip import KeySignature, TempoChange
from musegen.studio import Studio

EXAMPLES = Path(__file__).parents[1] / "musegen" / "data" / "examples"
REALWORLD = sorted((Path(__file__).parent / "data" / "realworld").glob("*.mid"))


@pytest.fixture(scope="module")
def studio(tiny_model_dir) -> Studio:
    return Studio(tiny_model_dir, device="cpu", threads=1)


def daw_file(path: Path, bpm: float, *, keys=(("D", 0),), bars: int = 8, channel: int = 3,
             program: int = 81, name: str = "Lead Synth", ppq: int = 960) -> Path:
    """A clip as a DAW exports it: a conductor track (tempo, metre, key signatures at the
    given bars), one named note track on its own channel and program; the notes of the
    bundled folk tune's first `bars` bars."""
    folk = Clip.load(EXAMPLES / "folk.mid").slice_bars(0, bars)
    bar = folk.bar_starts[1]
    scale = ppq / 480
    conductor = mido.MidiTrack([mido.MetaMessage("track_name", name="Tempo", time=0),
                                mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0),
                                mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0)])
    now = 0
    for k, at_bar in keys:
        t = round(at_bar * bar * scale)
        conductor.append(mido.MetaMessage("key_signature", key=k, time=t - now))
        now = t
    events = []
    for n in folk.tracks[0].notes:
        events.append((round(n.start_tick * scale), 1, mido.Message("note_on", channel=channel, note=n.pitch,
                                                                     velocity=n.velocity)))
        events.append((round(n.end_tick * scale), 0, mido.Message("note_off", channel=channel, note=n.pitch)))
    events.sort(key=lambda e: (e[0], e[1]))
    notes = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0),
                            mido.Message("program_change", channel=channel, program=program, time=0)])
    now = 0
    for t, _, msg in events:
        notes.append(msg.copy(time=t - now))
        now = t
    mid = mido.MidiFile(type=1, ticks_per_beat=ppq)
    mid.tracks += [conductor, notes]
    mid.save(path)
    return path


def meta(path: Path) -> dict:
    """Everything a DAW reads besides the notes, with times in 480ths of a quarter."""
    mid = mido.MidiFile(path)
    scale = 480 / mid.ticks_per_beat
    out: dict = {"tempo": [], "timesig": [], "key": [], "tracks": []}
    for tr in mid.tracks:
        now, name, program, voices = 0, "", [0] * 16, []  # no program change: GM's program 0
        for m in tr:
            now += m.time
            tick = round(now * scale)
            if m.type == "set_tempo":
                out["tempo"].append((tick, m.tempo))
            elif m.type == "time_signature":
                out["timesig"].append((tick, m.numerator, m.denominator))
            elif m.type == "key_signature":
                out["key"].append((tick, m.key))
            elif m.type == "track_name":
                name = m.name
            elif m.type == "program_change":
                program[m.channel] = m.program
            elif m.type == "note_on" and m.velocity and (m.channel, program[m.channel]) not in voices:
                voices.append((m.channel, program[m.channel]))
        # a format-0 file's channels come back as tracks of their own, each on its channel
        out["tracks"] += [(name, ch, prog) for ch, prog in sorted(voices)]
    out["tracks"].sort()
    for k in ("tempo", "timesig", "key"):  # the map in effect: at one tick the last event wins
        last: dict = {}
        for e in sorted(out[k], key=lambda e: e[0]):  # stable: file order within a tick
            last[e[0]] = e
        out[k] = [e for i, e in enumerate(last.values()) if i == 0 or e[1:] != list(last.values())[i - 1][1:]]
    return out


def in_force(events: list, tick: int) -> tuple:
    """The event in force at `tick`, moved to tick 0."""
    current = events[0]
    for e in events:
        if e[0] <= tick:
            current = e
    return (0, *current[1:])


@pytest.mark.parametrize("bpm", [120, 100, 90, 180])
def test_continue_and_blend_keep_the_daws_tempo_key_metre_names_and_channels(studio, tmp_path, bpm):
    src = daw_file(tmp_path / "clip.mid", bpm)
    given = meta(src)
    clip = Clip.load(src)
    takes = (studio.continue_(clip, bars=2, variations=2, seed=3)
             + studio.blend(clip, styles={"alpha": 0.5, "beta": 0.5}, bars=2, variations=1, seed=3))
    for i, t in enumerate(takes):
        got = meta(t.clip.save(tmp_path / f"take{i}.mid"))
        assert got["tempo"] == [(0, mido.bpm2tempo(bpm))]  # 120 stays 500000 us, not 123.03 bpm
        assert got["timesig"] == [(0, 4, 4)]
        assert got["key"] == [(0, "D")]
        assert got["tracks"] == given["tracks"] == [("Lead Synth", 3, 81)]


def test_continue_carries_what_is_in_force_at_the_end(studio, tmp_path):
    src = daw_file(tmp_path / "clip.mid", 100, keys=(("Eb", 0), ("A", 2), ("F", 4)))
    given = meta(src)
    clip = Clip.load(src)
    take = studio.continue_(clip, bars=2, variations=1, seed=1)[0]
    got = meta(take.clip.save(tmp_path / "take.mid"))
    end = clip.bar_starts[-1]
    assert got["key"] == [in_force(given["key"], end)] == [(0, "F")]
    assert got["tempo"] == [in_force(given["tempo"], end)]


def test_regenerate_and_lyrics_keep_a_key_change_and_every_other_event(studio, tmp_path):
    src = daw_file(tmp_path / "clip.mid", 90, keys=(("Eb", 0), ("A", 3), ("F", 5)))
    given = meta(src)
    assert [k for _, k in given["key"]] == ["Eb", "A", "F"]
    clip = Clip.load(src)
    regen = studio.regenerate(clip, bars=(3, 4), variations=2, seed=2)
    words = studio.lyrics_for(clip, theme="the sea", variations=1, seed=2)
    for i, t in enumerate(regen + words):
        got = meta(t.clip.save(tmp_path / f"t{i}.mid"))
        assert got == given, t.operation


def test_regenerate_a_real_tempo_map_keeps_it_whole(studio, tmp_path):
    """Real files (odd PPQ, many tempo changes, format 0, drums, 6/8): the regenerated take's
    tempo map, metre, key signatures, names and channels equal the file's."""
    checked = 0
    for path in REALWORLD:
        clip = Clip.load(path)
        try:
            studio.tok.encode(clip)
        except Exception:  # more tracks or a metre than the tokenizer holds: not this test's concern
            continue
        given = meta(path)
        take = studio.regenerate(clip, bars=(1, 1), variations=1, seed=1)[0]
        got = meta(take.clip.save(tmp_path / path.name))
        assert got["tempo"] == given["tempo"], path.name
        assert got["timesig"] == given["timesig"], path.name
        # the file's key signatures, or (a file without any) the estimate's, at the start
        assert got["key"] == (given["key"] or [(0, got["key"][0][1])]), path.name
        assert got["tracks"] == given["tracks"], path.name
        checked += 1
    assert checked >= 4


def test_from_nothing_and_melody_write_the_requested_tempo_exactly(studio, tmp_path):
    take = studio.continue_(None, bars=2, variations=1, seed=1, tempo=100, time_signature=(3, 4),
                            key="Bb major")[0]
    got = meta(take.clip.save(tmp_path / "nothing.mid"))
    assert got["tempo"] == [(0, mido.bpm2tempo(100))]
    assert got["timesig"] == [(0, 3, 4)] and got["key"] == [(0, "Bb")]
    tune = studio.melody_for("Down by the river / where the cold wind blows", tempo=100,
                             variations=1, seed=1)[0]
    got = meta(tune.clip.save(tmp_path / "melody.mid"))
    assert got["tempo"] == [(0, mido.bpm2tempo(100))]  # was 98.46 while the sidecar said 100
    assert tune.params["tempo"] == 100.0
    assert len(got["key"]) == 1 and got["tracks"][0][0] == "melody"


def test_every_take_carries_a_key_signature(studio, tmp_path):
    folk = Clip.load(EXAMPLES / "folk.mid")
    plain = Clip(tracks=folk.tracks, tempos=folk.tempos, time_signatures=folk.time_signatures,
                 length_ticks=folk.length_ticks)  # no key signature: the estimate is written
    assert not plain.key_signatures
    locked = studio.continue_(plain, bars=1, variations=1, seed=1, key="E minor")[0]
    free = studio.continue_(plain, bars=1, variations=1, seed=1)[0]
    assert meta(locked.clip.save(tmp_path / "locked.mid"))["key"] == [(0, "Em")]
    assert meta(free.clip.save(tmp_path / "free.mid"))["key"] == [(0, KeySignature.of(plain.key).key.split()[0])]


def test_splice_and_carry_are_exact_on_their_own():
    folk = Clip.load(EXAMPLES / "folk.mid")
    daw = Clip(tracks=folk.tracks, tempos=(TempoChange(0, 120.0), TempoChange(folk.bar_starts[4], 96.5)),
               time_signatures=folk.time_signatures, length_ticks=folk.length_ticks, name="clip",
               key_signatures=(KeySignature(0, 2), KeySignature(folk.bar_starts[6], -1, True)))
    quantized = Clip(tracks=(), length_ticks=folk.length_ticks)
    spliced = splice(daw, quantized, folk.bar_starts[2], folk.bar_starts[3])
    lo, hi = folk.bar_starts[2], folk.bar_starts[3]
    assert [n for n in spliced.tracks[0].notes] == [n for n in folk.tracks[0].notes
                                                     if not lo <= n.start_tick < hi]
    cont = carry(daw.slice_bars(0, 2), daw, at_tick=folk.bar_starts[5])
    bar = folk.bar_starts[1]
    assert cont.tempos == (TempoChange(0, 96.5),)
    assert cont.key_signatures == (KeySignature(0, 2), KeySignature(bar, -1, True))  # bar 7 of the source
    later = carry(daw.slice_bars(0, 2), daw, at_tick=folk.bar_starts[7])
    assert later.key_signatures == (KeySignature(0, -1, True),)


def test_a_regenerated_note_held_past_the_clips_end_is_cut_there():
    """Regenerating the last bars must give a take of the same length: a new note that rings
    past the last bar line is cut at it (16 of 1000 regenerate takes were a bar longer)."""
    from dataclasses import replace

    from musegen.clip import Note

    folk = Clip.load(EXAMPLES / "folk.mid")
    end, last = folk.bar_starts[-1], folk.bar_starts[-2]
    held = Note(pitch=67, start_tick=last, duration_ticks=3 * (end - last), velocity=80)
    decoded = Clip(tracks=(replace(folk.tracks[0], notes=(held,)),), length_ticks=4 * end)
    spliced = splice(folk, decoded, last, end)
    assert spliced.n_bars == folk.n_bars and spliced.bar_starts[-1] == end
    assert spliced.tracks[0].notes[-1] == replace(held, duration_ticks=end - last)


def test_key_signature_names_round_trip_every_signature():
    for sharps in range(-7, 8):
        for minor in (False, True):
            k = KeySignature(0, sharps, minor)
            assert KeySignature.of(k.key) == k, k.key
    assert KeySignature.of("C# major", as_spelled=False).sharps == -5  # an estimate: Db, fewer accidentals


def test_channels_survive_a_file_round_trip():
    folk = Clip.load(EXAMPLES / "folk.mid")
    from dataclasses import replace

    two = replace(folk, tracks=(replace(folk.tracks[0], channel=6, name="fiddle"),
                                replace(folk.tracks[0], channel=9, is_drum=True, name="kit")))
    back = Clip.from_bytes(two.to_bytes())
    assert [(t.channel, t.name, t.is_drum) for t in back.tracks] == [(6, "fiddle", False), (9, "kit", True)]
