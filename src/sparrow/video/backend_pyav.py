"""The PyAV backend (default, always installed): timeline from packets, sparse decoding.

How a sample is read:
1. Demux every video packet without decoding: sorted presentation timestamps give each frame's index
   and time, the keyframe flags give the seek points (cheap: no pixel work).
2. Plan the frames (``strategies.plan``) on that timeline.
3. Decode in one forward pass, seeking to the keyframe before a target only when that skips frames;
   packets of frames that are not wanted are sent with ``skip_frame=NONREF`` so the decoder drops
   non-reference frames (most B-frames) without decoding them; the decoder runs its own threads.
4. Only the wanted frames are converted to RGB, resized in the same swscale call (one reused
   ``VideoReformatter``), then turned upright when the stream has rotation metadata.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from sparrow.video.errors import EmptyVideo, NoVideoStream, VideoDecodeError, VideoNotFound
from sparrow.video.info import VideoInfo
from sparrow.video.sizing import Size, target_size
from sparrow.video.timeline import Timeline

# Seek only when the next target's keyframe is at least this many frames past the decoder's position:
# a seek flushes the decoder and refills its thread pipeline, which costs about this many frames.
SEEK_MIN_GAP = 12
# A truncated file: the header promises this much more than the packets hold.
TRUNCATION_SLACK_S = 0.5
# Scans of recently sampled files, keyed by (path, size, mtime, inode): a dataset samples the same video
# for several questions or epochs, and the scan reads the whole file. A few MB for thousands of videos.
SCAN_CACHE_SIZE = 512
_scan_cache: OrderedDict[tuple, Scan] = OrderedDict()


def _reason(e: BaseException) -> str:
    """FFmpeg's message without the errno and file name PyAV adds."""
    msg = getattr(e, "strerror", None) or str(e)
    return str(msg).splitlines()[0] if msg else type(e).__name__


def cw_rotation(frame_rotation: float) -> int:
    """Clockwise degrees a player turns the picture by. FFmpeg's display matrix angle is
    counter-clockwise, so a phone's portrait video (legacy tag ``rotate=90``) reads -90 here."""
    return int(-round(frame_rotation / 90) * 90) % 360


def open_video(path: str | Path) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    """Open a file and pick its video stream, mapping every failure to a VideoError."""
    p = Path(path)
    if not p.exists():
        raise VideoNotFound(p, "no such file")
    if not p.is_file():
        raise VideoNotFound(p, "not a file")
    if p.stat().st_size == 0:
        raise VideoDecodeError(p, "file is empty (0 bytes)")
    try:
        container = av.open(str(p), metadata_errors="ignore")
    except av.FFmpegError as e:
        raise VideoDecodeError(p, f"not a readable video ({_reason(e)})") from None
    except (OSError, ValueError) as e:
        raise VideoDecodeError(p, f"cannot open ({e})") from None
    # Cover art in audio files is a "video" stream holding one picture: not a video.
    streams = [s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)]
    if not streams:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        container.close()
        raise NoVideoStream(p, f"no video stream (streams: {', '.join(kinds)})")
    return container, streams[0]


@dataclass
class Scan:
    timeline: Timeline | None
    sequential: bool  # packets carry no timestamps: frame k of the decoder output is index k
    truncated: str | None  # why the file looks cut short, or None


class PyAVReader:
    """One open video. Not thread-safe; close it (or use ``with``)."""

    name = "pyav"

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        self.path = Path(path)
        self.threads = threads
        self._open()
        self._reformatter = VideoReformatter()
        self.rotation: int | None = None  # learnt from the first decoded frame
        # Some demuxers (MPEG-TS) land after the keyframe asked for: learn to seek further back.
        self._seek_back = 0
        self._no_seek = False
        self.failure: str | None = None

    def _open(self) -> None:
        self.container, self.stream = open_video(self.path)
        # Frame + slice threads; must be set before the decoder opens (at the first decode).
        self.stream.thread_type = "AUTO"
        self.stream.codec_context.thread_count = self.threads

    def __enter__(self) -> PyAVReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.container.close()

    # -- header facts ----------------------------------------------------------------------------
    def _rate(self) -> Fraction | None:
        vs = self.stream
        for r in (vs.average_rate, vs.guessed_rate, vs.base_rate):
            if r:
                return Fraction(r)
        return None

    def _header_duration(self) -> float | None:
        """The video stream's duration as the header states it (seconds), when it does."""
        vs = self.stream
        if vs.duration and vs.time_base:
            return float(vs.duration * vs.time_base)
        tag = vs.metadata.get("DURATION") or vs.metadata.get("duration")
        if tag:  # Matroska: "00:00:04.000000000"
            try:
                h, m, s = tag.split(":")
                return int(h) * 3600 + int(m) * 60 + float(s)
            except ValueError:
                pass
        if len(self.container.streams) == 1 and self.container.duration:
            return self.container.duration / av.time_base
        return None

    def header_info(self, timeline: Timeline | None = None) -> VideoInfo:
        """VideoInfo from the header, made exact by a scanned timeline when one is given."""
        vs = self.stream
        rate = self._rate()
        tb = vs.time_base or Fraction(1, 1)
        if timeline is not None:
            duration = timeline.duration
            n, exact = len(timeline), True
            start = timeline.start_time
            vfr = timeline.variable_fps
            fps = float(rate) if rate and not vfr else timeline.avg_fps
        else:
            duration = self._header_duration() or 0.0
            if vs.frames and vs.frames > 0:
                n, exact = int(vs.frames), True
            else:
                n, exact = (round(duration * float(rate)) if rate else 0), False
            start = float(vs.start_time * tb) if vs.start_time is not None else 0.0
            fps = float(rate) if rate else (n / duration if duration else 0.0)
            # FFmpeg's r_frame_rate is the rate all timestamps fit; it differs from the average
            # when frame durations vary.
            base, avg = vs.base_rate, vs.average_rate
            vfr = bool(base and avg and abs(float(base) - float(avg)) > 0.01 * float(avg))
        rot = self.rotation if self.rotation is not None else 0
        w, h = vs.codec_context.width, vs.codec_context.height
        if rot in (90, 270):
            w, h = h, w
        return VideoInfo(
            path=str(self.path),
            duration=float(duration),
            fps=float(fps),
            num_frames=int(n),
            num_frames_exact=exact,
            width=int(w),
            height=int(h),
            rotation=rot,
            codec=vs.codec_context.name,
            start_time=float(start),
            variable_fps=vfr,
        )

    def read_rotation(self) -> int:
        """Decode the first frame to learn the display rotation (FFmpeg attaches it to frames)."""
        if self.rotation is None:
            self._rewind()
            try:
                for frame in self.container.decode(self.stream):
                    self.rotation = cw_rotation(frame.rotation)
                    break
            except av.FFmpegError as e:
                raise VideoDecodeError(self.path, f"cannot decode the first frame ({_reason(e)})") from None
            if self.rotation is None:
                raise EmptyVideo(self.path, "the video stream has no frames that decode")
        return self.rotation

    def _rewind(self) -> None:
        try:
            self.container.seek(0, backward=True)
        except av.FFmpegError:
            self.container.close()
            self._open()

    # -- scanning ----------------------------------------------------------------------------------
    def scan(self) -> Scan:
        """Every video packet's timestamp and keyframe flag, read without decoding (cached per file)."""
        st = self.path.stat()
        key = (str(self.path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
        hit = _scan_cache.get(key)
        if hit is not None:
            _scan_cache.move_to_end(key)
            return hit
        result = self._scan()
        _scan_cache[key] = result
        if len(_scan_cache) > SCAN_CACHE_SIZE:
            _scan_cache.popitem(last=False)
        return result

    def _scan(self) -> Scan:
        vs = self.stream
        pts: list[int] = []
        durs: list[int] = []
        keys: list[bool] = []
        no_pts = 0
        total = 0
        error = None
        try:
            for pkt in self.container.demux(vs):
                if not pkt.size:  # the empty flush packet at the end
                    continue
                total += 1
                if pkt.pts is None:
                    no_pts += 1
                    continue
                if pkt.is_discard:  # before an edit list's start: decoded as a reference, never shown
                    continue
                pts.append(pkt.pts)
                durs.append(pkt.duration or 0)
                keys.append(pkt.is_keyframe)
        except av.FFmpegError as e:
            error = f"reading stops after {total} packets ({_reason(e)})"
        rate = self._rate() or Fraction(30)
        tb = vs.time_base or Fraction(1, 1)
        if no_pts:
            tl = Timeline.constant(no_pts + len(pts), rate) if no_pts + len(pts) else None
            sequential = True
        else:
            default = int(1 / (rate * tb)) if rate * tb else 1
            tl = Timeline.from_packets(pts, durs, keys, Fraction(tb), default) if pts else None
            sequential = False
        truncated = error
        if truncated is None and tl is not None:
            if vs.frames and vs.frames > total:
                truncated = f"the header lists {vs.frames} frames but the file holds {total}"
            else:
                head = self._header_duration()
                slack = max(TRUNCATION_SLACK_S, 3.0 / float(rate))
                # Some headers give the span, some (Matroska) the end time: short of both is truncated.
                end = float(tl.end_pts * tl.time_base)
                if head is not None and head > max(tl.duration, end) + slack:
                    truncated = f"the header says {head:.2f} s but the frames stop at {tl.duration:.2f} s"
        return Scan(timeline=tl, sequential=sequential, truncated=truncated)

    # -- decoding ------------------------------------------------------------------------------------
    def _convert(self, frame: av.VideoFrame, size: Size) -> np.ndarray:
        rot = cw_rotation(frame.rotation)
        if self.rotation is None:
            self.rotation = rot
        turned = rot in (90, 270)
        disp_h, disp_w = (frame.width, frame.height) if turned else (frame.height, frame.width)
        out_hw = target_size(size, disp_h, disp_w)
        if out_hw is None:
            rgb = self._reformatter.reformat(frame, format="rgb24")
        else:
            h, w = out_hw  # display orientation; the stored picture is turned afterwards
            if turned:
                h, w = w, h
            rgb = self._reformatter.reformat(frame, width=w, height=h, format="rgb24")
        arr = rgb.to_ndarray()
        if rot:
            arr = np.rot90(arr, k=-(rot // 90))  # clockwise
        return arr

    def _position(self, tl: Timeline, need: int) -> bool:
        """Get the demuxer to a point from which keyframe ``need`` can be decoded. Returns True when
        decoding restarts from the file's start (every frame that comes out can be trusted), False after
        a seek (frames count only from the first keyframe that comes out)."""
        pos = int(np.searchsorted(tl.key_indices, need, side="right")) - 1 - self._seek_back
        if self._no_seek or pos < 0:
            self.container.close()
            self._open()
            return True
        self.container.seek(int(tl.pts[tl.key_indices[pos]]), stream=self.stream, backward=True)
        return False

    def iter_decode(
        self,
        tl: Timeline,
        wanted: list[int],
        size: Size,
        allow_partial: bool,
        sequential: bool = False,
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, frame)`` for ``wanted`` (sorted, unique), in order, one frame in memory at a time;
        undecodable frames raise VideoDecodeError, or with ``allow_partial`` are skipped (see ``failure``)."""
        self.failure = None
        if sequential:
            yield from self._iter_sequential(tl, wanted, size, allow_partial)
            return
        pts_index = {int(p): i for i, p in enumerate(tl.pts)}
        wanted_pts = {int(tl.pts[i]) for i in wanted}
        key_set = set(tl.key_indices.tolist())
        k = 0  # next position in wanted
        last = -1  # presentation index of the decoder's latest frame
        need = 0  # the keyframe the current run of decoding was positioned for
        synced = True  # False after a seek until a keyframe comes out of the decoder
        it = None
        failure: str | None = None

        def fail(reason: str) -> None:
            nonlocal failure
            if not allow_partial:
                raise VideoDecodeError(self.path, reason)
            failure = failure or reason

        def far(j: int) -> bool:
            """Is frame j's keyframe past both the positioned keyframe and the decoder (by enough)?"""
            key = tl.key_for(j)
            return not self._no_seek and key > need and key - last > SEEK_MIN_GAP

        while k < len(wanted):
            if it is None or far(wanted[k]):
                need = tl.key_for(wanted[k])
                try:
                    synced = self._position(tl, need)
                except av.FFmpegError as e:
                    fail(f"cannot seek ({_reason(e)})")
                    break
                it = self.container.demux(self.stream)
                last = -1 if synced else need - 1
            cc = self.stream.codec_context
            cc.skip_frame = skip = "DEFAULT"
            reseek = False
            try:
                for pkt in it:
                    # Frames nobody wants: let the decoder drop the non-reference ones undecoded.
                    want = "DEFAULT" if (not pkt.size or pkt.pts in wanted_pts) else "NONREF"
                    if want != skip:
                        cc.skip_frame = skip = want
                    for frame in self.stream.decode(pkt):
                        i = pts_index.get(frame.pts) if frame.pts is not None else None
                        if i is None:
                            continue
                        if not synced:  # after a seek, trust frames from the first keyframe on
                            if i not in key_set:
                                continue
                            synced = True
                            if i > need:  # landed past the keyframe we need: seek further back next time
                                self._seek_back += 1
                                self._no_seek = self._seek_back > 3
                                reseek = True
                                break
                        last = i
                        while k < len(wanted) and wanted[k] < i:  # the decoder never produced it
                            fail(f"frame {wanted[k]} (at {tl.times[wanted[k]]:.3f} s) could not be decoded")
                            k += 1
                        if k < len(wanted) and wanted[k] == i:
                            k += 1
                            yield i, self._convert(frame, size)
                    if reseek or k >= len(wanted) or far(wanted[k]):
                        break
                else:
                    # End of stream (the flush packet was decoded): what is still wanted is missing.
                    for j in wanted[k:]:
                        fail(f"frame {j} (at {tl.times[j]:.3f} s) could not be decoded")
                    k = len(wanted)
            except av.FFmpegError as e:
                at = f" near {tl.times[min(max(last, 0), len(tl) - 1)]:.3f} s" if last >= 0 else ""
                fail(f"decoding failed{at} ({_reason(e)})")
                break
            if reseek:
                it = None
        self.failure = failure

    def _iter_sequential(
        self, tl: Timeline, wanted: list[int], size: Size, allow_partial: bool
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Streams without packet timestamps: the decoder's k-th frame is index k."""
        self._no_seek = True
        self._position(tl, 0)
        want = set(wanted)
        done = 0
        failure = None
        i = -1
        try:
            for frame in self.container.decode(self.stream):
                i += 1
                if i in want:
                    done += 1
                    yield i, self._convert(frame, size)
                    if done == len(want):
                        break
        except av.FFmpegError as e:
            failure = f"decoding failed after frame {i} ({_reason(e)})"
        if done < len(want) and failure is None:
            failure = f"{len(want) - done} frames could not be decoded"
        if failure and not allow_partial:
            raise VideoDecodeError(self.path, failure)
        self.failure = failure
