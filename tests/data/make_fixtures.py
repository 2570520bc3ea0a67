"""Makes the real-world MIDI fixtures in tests/data/realworld from real MIDI files that ship
with music21 (its MIDI test files and a Mozart K.525 excerpt, none in musegen's corpus) and
one Bach chorale with its German text. Run once; the outputs are committed.

    python tests/data/make_fixtures.py
"""

from pathlib import Path

import mido
import music21

M21 = Path(music21.__file__).parent
OUT = Path(__file__).parent / "realworld"


def rescale(mid: mido.MidiFile, ppq: int) -> mido.MidiFile:
    out = mido.MidiFile(type=mid.type, ticks_per_beat=ppq)
    for tr in mid.tracks:
        new, t_old, t_new = mido.MidiTrack(), 0, 0
        for msg in tr:
            t_old += msg.time
            t = round(t_old * ppq / mid.ticks_per_beat)
            new.append(msg.copy(time=t - t_new))
            t_new = t
        out.tracks.append(new)
    return out


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    prim = M21 / "midi" / "testPrimitive"
    # format 0: a two-track piece merged into one track
    m = mido.MidiFile(prim / "test03.mid")
    f0 = mido.MidiFile(type=0, ticks_per_beat=m.ticks_per_beat)
    f0.tracks.append(mido.merge_tracks(m.tracks))
    f0.save(OUT / "format0.mid")
    # odd PPQ and many tempo changes: Mozart K.525 excerpt at 383 ticks per quarter
    rescale(mido.MidiFile(M21 / "omr" / "k525short.mid"), 383).save(OUT / "odd_ppq_383.mid")
    # many tempo changes, five tracks
    mido.MidiFile(M21 / "omr" / "k525MIDIMvt1.mid").save(OUT / "tempo_map.mid")
    # 6/8, two tracks, PPQ 96
    rescale(mido.MidiFile(prim / "test09.mid"), 96).save(OUT / "six_eight_ppq96.mid")
    # drums: a melody plus a General MIDI drum track on channel 10
    mel = mido.MidiFile(prim / "test06.mid")
    tpb = mel.ticks_per_beat
    drums = mido.MidiTrack([mido.MetaMessage("track_name", name="Drums", time=0)])
    for beat in range(64):
        for pitch in ([36] if beat % 2 == 0 else [38]) + [42]:
            drums.append(mido.Message("note_on", channel=9, note=pitch, velocity=100, time=0))
        drums.append(mido.Message("note_off", channel=9, note=42, velocity=0, time=tpb // 2))
        for pitch in [36] if beat % 2 == 0 else [38]:
            drums.append(mido.Message("note_off", channel=9, note=pitch, velocity=0, time=0))
        drums.append(mido.Message("note_on", channel=9, note=42, velocity=70, time=0))
        drums.append(mido.Message("note_off", channel=9, note=42, velocity=0, time=tpb // 2))
    mel.type = 1
    mel.tracks.append(drums)
    mel.save(OUT / "drums.mid")
    # lyrics: BWV 269 with its text as lyric meta events on the soprano track
    score = music21.corpus.parse("bach/bwv269")
    music21.defaults.ticksPerQuarter = 480
    mf = music21.midi.translate.streamToMidiFile(score)
    path = OUT / "lyrics_chorale.mid"
    mf.open(str(path), "wb")
    mf.write()
    mf.close()
    lyric_of = [n.lyrics[0].text if n.lyrics else None
                for n in score.parts[0].recurse().notes if not n.tie or n.tie.type == "start"]
    mid = mido.MidiFile(path)
    track = mid.tracks[1]
    new, k = mido.MidiTrack(), 0
    for msg in track:
        if msg.type == "note_on" and msg.velocity > 0 and k < len(lyric_of):
            if lyric_of[k] is None:
                new.append(msg)
                k += 1
                continue
            new.append(mido.MetaMessage("lyrics", text=lyric_of[k], time=msg.time))
            new.append(msg.copy(time=0))
            k += 1
        elif msg.type == "lyrics":  # music21 writes every verse joined; keep ours only
            if msg.time:
                new.append(mido.MetaMessage("marker", text="", time=msg.time))
        else:
            new.append(msg)
    mid.tracks[1] = new
    mid.save(path)
    for p in sorted(OUT.glob("*.mid")):
        print(p.name, mido.MidiFile(p).type, mido.MidiFile(p).ticks_per_beat)


if __name__ == "__main__":
    main()
