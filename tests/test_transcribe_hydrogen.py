"""The Hydrogen kit sound source of the transcription training set, on a kit this test writes."""

import numpy as np
import pytest
import soundfile as sf

from breakgan.transcribe import hydrogen
from breakgan.transcribe.synthesis import pitch_heads

RATE = 16000

KIT_XML = """<?xml version="1.0" encoding="UTF-8"?>
<drumkit_info xmlns="http://www.hydrogen-music.org/drumkit">
 <name>Test</name>
 <instrumentList>
  <instrument><id>0</id><name>Kick Hard</name><gain>1</gain>
   <layer><filename>kick_soft.wav</filename><min>0</min><max>0.5</max><gain>1</gain></layer>
   <layer><filename>kick_loud.wav</filename><min>0.5</min><max>1</max><gain>1</gain></layer>
  </instrument>
  <instrument><id>1</id><name>Open HH</name><gain>1</gain>
   <layer><filename>open.wav</filename><min>0</min><max>1</max><gain>1</gain></layer>
  </instrument>
  <instrument><id>2</id><name>Closed HH</name><gain>1</gain><filename>closed.wav</filename></instrument>
  <instrument><id>3</id><name>Cowbell</name><gain>1</gain><filename>closed.wav</filename></instrument>
  <instrument><id>4</id><name>Ride (Custom 22")</name><gain>1</gain><filename>missing.wav</filename></instrument>
 </instrumentList>
</drumkit_info>
"""


@pytest.fixture
def kit_dir(tmp_path):
    t = np.arange(int(44100 * 0.5)) / 44100
    sf.write(tmp_path / "kick_soft.wav", 0.2 * np.sin(2 * np.pi * 60 * t), 44100)
    sf.write(tmp_path / "kick_loud.wav", 0.9 * np.sin(2 * np.pi * 60 * t), 44100)
    sf.write(tmp_path / "open.wav", 0.5 * np.ones(44100), 44100)       # 1 s of ring, to be choked
    sf.write(tmp_path / "closed.wav", 0.5 * np.ones(441), 44100)
    (tmp_path / "drumkit.xml").write_text(KIT_XML)
    return tmp_path


def test_names_map_to_heads_and_missing_samples_are_skipped(kit_dir):
    kit = hydrogen.HydrogenKit(kit_dir, RATE)
    assert {i.name: i.kind for i in kit.instruments} == {"Kick Hard": "kick", "Open HH": "hh_open",
                                                         "Closed HH": "hh_closed"}
    assert kit.heads == {0, 2, 3}
    # "Custom" holds "tom" and "Ride ..." must not become a tom; cowbells are not drum-kit heads
    assert hydrogen.kind_of('Ride (Custom, Zagrebin 22")') == "ride"
    assert hydrogen.kind_of("Cowbell") == ""
    assert hydrogen.kind_of("Side OHH") == "hh_open"


def test_velocity_layers_choke_and_labels(kit_dir):
    kit = hydrogen.HydrogenKit(kit_dir, RATE)
    heads = pitch_heads()
    notes = [(0.1, 36, 30), (0.6, 36, 120), (1.0, 46, 100), (1.3, 42, 100), (2.5, 56, 100)]  # 56: cowbell
    choice = [kit] * 7
    y, labels = hydrogen.render(choice, notes, 3.0, RATE, np.random.default_rng(0), heads)
    soft = np.abs(y[int(0.1 * RATE):int(0.5 * RATE)]).max()
    loud = np.abs(y[int(0.6 * RATE):int(0.95 * RATE)]).max()
    assert loud > 3 * soft          # the loud layer, not the soft one scaled
    # the open hat rings until 10 ms after the closed hat, then stops
    assert np.abs(y[int(1.2 * RATE):int(1.25 * RATE)]).min() > 0.1
    assert np.abs(y[int(1.4 * RATE):int(2.4 * RATE)]).max() < 1e-6
    # the cowbell's head (snare class) has no instrument in this kit: not rendered, not labelled
    assert [(round(t, 2), h) for t, h, _ in labels] == [(0.1, 0), (0.6, 0), (1.0, 3), (1.3, 2)]


def test_benchmark_kit_is_held_out():
    assert "The Black Pearl 1.0" in hydrogen.EXCLUDED
    assert all(p.name not in hydrogen.EXCLUDED for p in hydrogen.available_kits())


def test_synth_accompaniment_is_seeded_and_sounds_where_its_notes_are():
    from breakgan.transcribe.synthesis import SynthAccompaniment

    events = [(0.5, 0, 36, 100, True), (0.9, 0, 36, 0, False), (2.0, 1, 60, 90, True), (3.0, 1, 60, 0, False)]
    a = SynthAccompaniment(np.random.default_rng(3)).render(events, {}, 4.0)
    b = SynthAccompaniment(np.random.default_rng(3)).render(events, {}, 4.0)
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a).all() and len(a) == 4 * RATE
    assert np.abs(a[:int(0.49 * RATE)]).max() == 0                    # silent before the first note
    assert np.abs(a[int(0.5 * RATE):int(0.9 * RATE)]).max() > 0.01    # the bass note
    assert np.abs(a[int(1.0 * RATE):int(1.9 * RATE)]).max() == 0      # released with a 20 ms fade
