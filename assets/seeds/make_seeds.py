"""Write the three seed patterns shipped with breakgan (written by the project, no third-party MIDI).

    python assets/seeds/make_seeds.py            # rewrites assets/seeds/*.mid

Each is two bars of 4/4 on channel 10 (General MIDI drums), one 16th per grid character:
x = hit (velocity 100), X = accent (127), o = ghost note (60), . = rest.
"""

from pathlib import Path

from breakgan.drums.output import midi_bytes
from breakgan.drums.seed import seed_from_pattern

SEEDS = {
    # an Amen-flavoured breakbeat: syncopated kick, backbeat snare with ghost notes, steady 8th hats
    "breakbeat": (136.0, """
        kick:  x.x.......xx....|x.x.......x.....
        snare: ....X..o.o..X..o|.o..X..o.o..X...
        hh:    x.x.x.x.x.x.x.x.|x.x.x.x.x.x.x.x.
        crash: x...............|................
    """),
    # four-on-the-floor house: kick on every beat, clap/snare on 2 and 4, open hat on the off-beats
    "four_on_the_floor": (124.0, """
        kick:  x...x...x...x...|x...x...x...x...
        snare: ....x.......x...|....x.......x...
        hh:    x...x...x...x...|x...x...x...x...
        oh:    ..x...x...x...x.|..x...x...x...x.
    """),
    # boom-bap hip-hop: lazy kick, hard snare on 2 and 4, 16th hats with accents
    "hiphop": (90.0, """
        kick:  x......x..x.....|x......x.x...x..
        snare: ....X.......X...|....X.......X..o
        hh:    X.x.X.x.X.x.X.x.|X.x.X.x.X.x.X.xx
    """),
}


def main() -> None:
    here = Path(__file__).resolve().parent
    for name, (tempo, grid) in SEEDS.items():
        seed = seed_from_pattern(grid, tempo=tempo)
        path = here / f"{name}.mid"
        path.write_bytes(midi_bytes(seed.pattern, seed.tempo, seed.beats_per_bar, name=name))
        print(f"{path} ({len(seed.pattern) // 16} bars, {tempo:g} BPM)")


if __name__ == "__main__":
    main()
