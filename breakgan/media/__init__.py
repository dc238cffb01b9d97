"""FFmpeg plumbing shared by every stage: probe, frame reader (pipe), video writer (pipe), audio decoder."""

from breakgan.media.audio import audio_blocks, decode_audio
from breakgan.media.ffmpeg_bin import ffmpeg_exe, ffprobe_exe
from breakgan.media.probe import MediaInfo, probe
from breakgan.media.reader import read_frames
from breakgan.media.writer import VideoWriter

__all__ = ["audio_blocks", "decode_audio", "ffmpeg_exe", "ffprobe_exe", "MediaInfo", "probe", "read_frames", "VideoWriter"]
