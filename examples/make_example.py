r"""Writes examples/minuet_in_g.mid: a robotic input, every note at velocity 64.

The first 16 bars of the Minuet in G major (BWV Anh. 114, Christian Petzold, public domain),
right hand as written and a simplified left hand, entered as notes on a quantised grid: the
kind of "sheet music" MIDI that StyleNet is meant to perform.

    python3 examples/make_example.py   # rewrites the committed file, byte for byte
"""

import os

import mido

TPB = 480  # ticks per quarter note
Q, E, H, DH = TPB, TPB // 2, 2 * TPB, 3 * TPB  # quarter, eighth, half, dotted half

# (pitch, duration) per bar; MIDI numbers: G4 = 67, D5 = 74, F#5 = 78, G5 = 79.
RIGHT = [
    [(74, Q), (67, E), (69, E), (71, E), (72, E)], [(74, Q), (67, Q), (67, Q)],
    [(76, Q), (72, E), (74, E), (76, E), (78, E)], [(79, Q), (67, Q), (67, Q)],
    [(72, Q), (74, E), (72, E), (71, E), (69, E)], [(71, Q), (72, E), (71, E), (69, E), (67, E)],
    [(66, Q), (67, E), (69, E), (71, E), (67, E)], [(69, DH)],
    [(74, Q), (67, E), (69, E), (71, E), (72, E)], [(74, Q), (67, Q), (67, Q)],
    [(76, Q), (72, E), (74, E), (76, E), (78, E)], [(79, Q), (67, Q), (67, Q)],
    [(72, Q), (74, E), (72, E), (71, E), (69, E)], [(71, Q), (72, E), (71, E), (69, E), (67, E)],
    [(69, Q), (71, E), (69, E), (67, E), (66, E)], [(67, DH)],
]
LEFT = [
    [(55, H), (57, Q)], [(59, DH)], [(60, DH)], [(59, DH)], [(57, DH)], [(55, DH)],
    [(62, Q), (59, Q), (55, Q)], [(62, Q), (50, Q), (54, Q)],
    [(55, H), (57, Q)], [(59, DH)], [(60, DH)], [(59, DH)], [(57, DH)], [(55, DH)],
    [(60, Q), (62, Q), (50, Q)], [(55, H), (43, Q)],
]


def hand(bars, name, channel):
    """A track playing the bars' notes back to back, each at velocity 64."""
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0),
                            mido.Message("program_change", program=0, channel=channel, time=0)])
    for bar in bars:
        for pitch, length in bar:
            track.append(mido.Message("note_on", note=pitch, velocity=64, channel=channel, time=0))
            track.append(mido.Message("note_off", note=pitch, velocity=0, channel=channel,
                                      time=length))
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def main():
    conductor = mido.MidiTrack([
        mido.MetaMessage("track_name", name="Minuet in G, BWV Anh. 114", time=0),
        mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0),
        mido.MetaMessage("key_signature", key="G", time=0),
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120), time=0),
        mido.MetaMessage("end_of_track", time=0),
    ])
    midi = mido.MidiFile(type=1, ticks_per_beat=TPB)
    midi.tracks += [conductor, hand(RIGHT, "right hand", 0), hand(LEFT, "left hand", 1)]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "minuet_in_g.mid")
    midi.save(path)
    print(f"wrote {path} ({sum(len(b) for b in RIGHT + LEFT)} notes, {midi.length:.1f} s)")


if __name__ == "__main__":
    main()
