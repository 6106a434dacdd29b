"""Reading and writing video files with PyAV (FFmpeg): frames as 1×3×H×W tensors in [0, 1], the source's frame
rate and pixel aspect kept, its audio stream copied into the output untouched, H.264 by default, and the output
written to a temporary file and renamed, so a crash never leaves half a video."""

from __future__ import annotations

import os
from dataclasses import dataclass
from io import BytesIO
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from .. import io
from ..errors import ConfigError, OutputError, VideoError
from ..lazy import lazy

av = lazy("av")

VIDEO_SUFFIXES = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".m4v": "mp4"}
CODECS = {"h264": "libx264", "h265": "libx265", "vp9": "libvpx-vp9"}
TRIAL_PIXELS = 8192 * 8192  # try_encoder encodes a black frame this large at most (200 MB of RGB)


@dataclass
class VideoInfo:
    """What a job needs to know about a source video before decoding it."""

    path: Path
    width: int
    height: int
    rate: Fraction  # frames per second
    frames: int  # from the container; an estimate from the duration where it does not say
    pixel_aspect: Fraction  # 1 for square pixels
    rotation: int  # degrees counterclockwise, 0-359, that a player turns the picture (the display matrix: phones)
    audio: bool
    codec: str

    @property
    def display_size(self) -> tuple[int, int]:
        """(height, width) as shown: pixels made square, and turned as a player turns them."""
        width = round(self.width * self.pixel_aspect)
        return (width, self.height) if self.rotation % 180 else (self.height, width)


def require() -> None:
    """Video needs PyAV and OpenCV, the `video` extra; say how to get them rather than fail on an import."""
    import importlib.util

    missing = [name for module, name in (("av", "av"), ("cv2", "opencv-python-headless"))
               if importlib.util.find_spec(module) is None]
    if missing:
        raise ConfigError(f"video needs {' and '.join(missing)}: pip install 'brushwork[video]'")


def _open(path: Path):
    try:
        return av.open(str(path))
    except (av.error.InvalidDataError, UnicodeDecodeError):
        raise VideoError(f"not a video (or a damaged one): {path}") from None
    except av.error.FFmpegError as e:
        raise VideoError(f"cannot open video {path}: {e.strerror or e}") from None


def probe(path: str | os.PathLike) -> VideoInfo:
    """Open a video and describe its first video stream; VideoError if there is none or it cannot be decoded."""
    require()
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path} is a folder, not a video" if path.is_dir() else f"video not found: {path}")
    with _open(path) as container:
        if container.format.name == "image2" or container.format.name.endswith("_pipe"):
            raise VideoError(f"{path} is an image, not a video: stylize it with `brushwork stylize`")
        if not container.streams.video:
            raise VideoError(f"{path} has no video stream")
        stream = container.streams.video[0]
        if stream.codec_context is None or not stream.width:
            raise VideoError(f"{path}: the video stream's codec cannot be decoded here")
        rate = Fraction(stream.average_rate or stream.guessed_rate or 25)
        frames = stream.frames
        if not frames and stream.duration and stream.time_base:
            frames = round(float(stream.duration * stream.time_base * rate))
        elif not frames and container.duration:
            frames = round(container.duration / 1_000_000 * float(rate))
        aspect = stream.sample_aspect_ratio or Fraction(1)
        try:
            first = next(container.decode(stream))
        except (StopIteration, av.error.FFmpegError):
            raise VideoError(f"{path}: no frame of its video stream can be decoded") from None
        return VideoInfo(path, stream.width, stream.height, rate, int(frames or 0), Fraction(aspect) or Fraction(1),
                         int(getattr(first, "rotation", 0) or 0) % 360, bool(container.streams.audio),
                         stream.codec_context.name)


def _turn(frame: torch.Tensor, rotation: int) -> torch.Tensor:
    """Turn a frame the way a player would (`rotation` degrees counterclockwise, in quarter turns)."""
    return torch.rot90(frame, k=round(rotation / 90) % 4, dims=(-2, -1)) if rotation % 360 else frame


def read_frames(info: VideoInfo, size: tuple[int, int]) -> Iterator[torch.Tensor]:
    """Every frame of the first video stream, turned as displayed and resized to `size` (height, width)."""
    with _open(info.path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                array = frame.to_ndarray(format="rgb24")
                tensor = torch.from_numpy(array).permute(2, 0, 1)[None].float().div(255)
                tensor = _turn(tensor, info.rotation)
                yield io.resize(tensor, size) if tuple(tensor.shape[-2:]) != size else tensor
        except av.error.FFmpegError as e:
            raise VideoError(f"{info.path}: decoding failed: {e}") from None


def check_codec(codec: str) -> str:
    """The FFmpeg encoder for a codec name (h264, h265, vp9, or an encoder's own name) that this build has."""
    require()
    encoder = CODECS.get(codec, codec)
    try:
        video = encoder in av.codecs_available and av.codec.Codec(encoder, "w").type == "video"
    except av.codec.codec.UnknownCodecError:  # a decoder only
        video = False
    if not video:
        raise ConfigError(f"unknown or unavailable video codec '{codec}': use one of {', '.join(CODECS)}")
    return encoder


def try_encoder(codec: str, path: str | os.PathLike, size: tuple[int, int], rate: Fraction, crf: int = 18,
                params: str | None = None) -> None:
    """Encode one black frame of `size` into memory as write_video would into `path`'s container, so that an encoder
    the container or the pixel format does not take (vp9 in .mov, mjpeg) is refused before any frame is
    stylized, not after the last."""
    encoder = check_codec(codec)
    suffix = Path(path).suffix.lower()
    if size[0] * size[1] > TRIAL_PIXELS:  # a size that large waits for the memory guard; try the pairing alone
        size = (64, 64)
    try:
        with av.open(BytesIO(), "w", format=VIDEO_SUFFIXES.get(suffix, "mp4")) as container:
            stream = _video_stream(container, encoder, rate, size, crf, params)
            black = av.VideoFrame.from_ndarray(np.zeros((*size, 3), np.uint8), format="rgb24")
            container.mux(stream.encode(black))
            container.mux(stream.encode(None))
    except (av.error.FFmpegError, ValueError) as e:
        raise ConfigError(f"the {codec} encoder cannot write a {suffix} video of {size[1]}×{size[0]}: "
                          f"{str(e).splitlines()[0]}") from None


def _video_stream(container, encoder: str, rate: Fraction, size: tuple[int, int], crf: int, params: str | None):
    """The output's video stream: 4:2:0, x264's and x265's quality as `crf` and their own `params`."""
    if encoder == "libsvtav1":  # SVT-AV1 prints its settings to stderr at INFO level unless its variable says less
        os.environ.setdefault("SVT_LOG", "1")
    stream = container.add_stream(encoder, rate=rate)
    stream.height, stream.width = size
    stream.pix_fmt = "yuv420p"
    options = {"crf": str(crf)} if encoder in ("libx264", "libx265") else {}
    own = ["log-level=error"] if encoder == "libx265" else []  # x265's dozen lines of banner and settings
    own += [params] if options and params else []
    if own:
        options[f"{encoder[3:]}-params"] = ":".join(own)
    stream.options = options
    return stream


def even_size(height: int, width: int) -> tuple[int, int]:
    """H.264 in 4:2:0 needs even sides: round each down to even, the aspect ratio changing by under a pixel."""
    return max(2, height - height % 2), max(2, width - width % 2)


def write_video(frames: Iterable[torch.Tensor], path: str | os.PathLike, rate: Fraction, source: VideoInfo | None,
                codec: str = "h264", crf: int = 18, params: str | None = None) -> Path:
    """Encode frames (1×3×H×W in [0, 1], all one even size) at `rate` frames per second, then copy the source's
    audio stream packet by packet, into a temporary file that replaces `path` only when complete. `params` are
    x264's or x265's own (e.g. "mbtree=0", which bench/bench_encode.py weighs)."""
    out = Path(path)
    encoder = check_codec(codec)
    fmt = VIDEO_SUFFIXES.get(out.suffix.lower(), "mp4")

    def write(tmp: str) -> None:
        with av.open(tmp, "w", format=fmt) as container:
            stream = None
            for frame in frames:
                array = frame[0].clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
                if stream is None:
                    stream = _video_stream(container, encoder, rate, array.shape[:2], crf, params)
                    audio = _add_audio(container, source)
                video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
                container.mux(stream.encode(video_frame))
            if stream is None:
                raise VideoError("no frames to write")
            container.mux(stream.encode(None))
            if audio is not None:
                _copy_audio(container, source, audio)

    try:
        io.atomic_write(out, write)
    except av.error.FFmpegError as e:
        raise OutputError(f"cannot write {out}: {e}") from None
    return out


def _add_audio(container, source: VideoInfo | None):
    if source is None or not source.audio:
        return None
    with _open(source.path) as src:
        return container.add_stream_from_template(src.streams.audio[0])


def _copy_audio(container, source: VideoInfo, stream) -> None:
    """Copy the source's first audio stream without re-encoding it."""
    with _open(source.path) as src:
        for packet in src.demux(src.streams.audio[0]):
            if packet.dts is None:
                continue
            packet.stream = stream
            container.mux(packet)
