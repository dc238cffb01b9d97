"""`breakgan studio`: a local web page over sampling, trajectory and the keyframe files render and live read.

Modules: `latents` (pure math: blends, morph timing), `engine` (the generator behind one worker
thread, PNG cache), `store` (favourites lists, per-part keyframes, blends in the run folder), `drums`
(a drums folder's candidates, by id), `jobs` (render in a background process), `app` (FastAPI routes;
ids in, never paths), `command` (the CLI).
"""
