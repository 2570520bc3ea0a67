"""`codec.parse` is lenient the way its callers rely on: these pin the edges it keeps."""

import numpy as np
import pytest

from musegen import Clip, TokenizeError
from musegen.examples import example_path
from musegen.tokenizer import Tokenizer, Vocab, codec
from musegen.tokenizer.codec import _QNote

V = Vocab()


def ids(*parts: tuple[str, int] | int) -> list[int]:
    return [p if isinstance(p, int) else V.id(*p) for p in parts]


HEAD = ids(V.bos, ("track", 0), ("program", 5), ("track", 1), ("program", 40))


def test_notes_of_undeclared_tracks_are_dropped_and_the_rest_kept():
    body = ids(V.bar, ("position", 0), ("pitch", 60), ("duration", 3),
               ("track", 3), ("pitch", 61), ("duration", 3),  # track 3 is not declared
               ("track", 1), ("velocity", 2), ("pitch", 62), ("duration", 4),
               V.bar, ("pitch", 63), ("duration", 5))  # a BAR resets track and velocity
    q = codec.parse(HEAD + body + [V.eos], V)
    d = V.default_velocity_bin
    assert q.programs == (5, 40)
    assert q.notes == (_QNote(0, 0, 0, 60, d, 3), _QNote(0, 0, 1, 62, 2, 4),
                       _QNote(1, 0, 0, 63, d, 5))


def test_end_padding_programs_in_bars_and_a_head_pitch():
    body = ids(("pitch", 70), V.bar, ("program", 9), ("duration", 1), V.pad,
               ("timesig", 3), ("tempo", 7), V.eos, ("timesig", 1), 99_999)
    q = codec.parse(HEAD + body, V)
    assert q.programs == (5, 40)  # the PROGRAM inside a bar is ignored
    assert q.bar_sigs == (3,) and q.bar_tempos == (7,)  # nothing after EOS is read
    assert q.notes == (_QNote(0, 0, 0, 70, V.default_velocity_bin, 1),)
    as_array = codec.parse(np.array(HEAD + body[:-1], dtype=np.uint16), V)
    assert as_array == q


@pytest.mark.parametrize("bad", [
    ids(("timesig", 1)),  # before any BAR
    ids(("duration", 2)),  # no PITCH open
    ids(V.bar, ("duration", 2)),
    ids(V.bar, V.fill),
])
def test_unexpected_tokens_name_themselves(bad):
    with pytest.raises(TokenizeError, match="unexpected token"):
        codec.parse(HEAD + bad, V)


def test_no_track_and_out_of_vocabulary():
    with pytest.raises(TokenizeError, match="declares no track"):
        codec.parse([V.bos, V.bar, V.eos], V)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        codec.parse(HEAD + [V.bar, V.size], V)


def test_decode_of_an_encoded_example_is_unchanged_by_bos_and_pad_noise():
    tok = Tokenizer(V)
    seq = tok.encode(Clip.load(example_path("folk")))
    noisy = np.insert(seq, [3, len(seq) // 2, len(seq) - 1], [V.pad, V.bos, V.pad])
    assert codec.parse(noisy, V) == codec.parse(seq, V)
