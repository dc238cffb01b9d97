"""Stage: live. A drums pattern on a beat clock -> timetagged OSC bundles for TouchDesigner.

Modules: `clock` (internal tempo or Ableton Link), `pattern` (the loop in beats: next events, pure),
`osc_out` (numbers-only messages and bundles, pure; UDP sender), `osc_in` (validated control
listener), `scheduler` (absolute deadlines: sleep then spin), `player` (ticks, controls,
regeneration), `preview` (each part's GAN frames as MJPEG, in a child process), `command` (the CLI).
"""
