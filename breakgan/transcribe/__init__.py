"""Drum transcription: any song -> per-part onsets (kick, snare, hi-hats, toms, cymbals) with a small
convolutional-recurrent network trained on audio synthesized from the Groove MIDI Dataset."""
