"""MLLP framing with raw bytes: <VT> payload <FS><CR>, however the bytes are chunked."""

from __future__ import annotations

import pytest

from gateway.ingest.mllp import Frame, FrameDecoder, FrameError, frame

MSG = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||123\r"


def test_frame_wraps_payload() -> None:
    assert frame(b"abc") == b"\x0babc\x1c\x0d"


def test_one_frame_in_one_chunk() -> None:
    assert FrameDecoder().feed(frame(MSG)) == [Frame(MSG)]


def test_one_frame_fed_byte_by_byte() -> None:
    decoder = FrameDecoder()
    data = frame(MSG)
    found = [f for i in range(len(data)) for f in decoder.feed(data[i:i + 1])]
    assert found == [Frame(MSG)]
    assert decoder.close() is None


def test_several_frames_in_one_chunk_and_split_across_chunks() -> None:
    decoder = FrameDecoder()
    data = frame(b"one") + frame(b"two") + frame(b"three")
    assert decoder.feed(data[:9]) == [Frame(b"one")]  # one, and half of two
    assert decoder.feed(data[9:]) == [Frame(b"two"), Frame(b"three")]


def test_end_block_split_between_fs_and_cr() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"\x0bpayload\x1c") == []
    assert decoder.feed(b"\x0d") == [Frame(b"payload")]


def test_noise_outside_frames_is_discarded_and_counted() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"junk\r\n" + frame(b"x") + b"\r\n") == [Frame(b"x")]
    assert decoder.discarded == 4


def test_lone_fs_inside_a_frame_is_payload() -> None:
    assert FrameDecoder().feed(b"\x0ba\x1cb\x1c\x0d") == [Frame(b"a\x1cb")]


def test_a_start_block_inside_a_frame_truncates_the_earlier_one() -> None:
    decoder = FrameDecoder()
    found = decoder.feed(b"\x0bMSH|partial" + frame(b"whole"))
    assert found == [Frame(b"MSH|partial", truncated=True), Frame(b"whole")]


def test_an_unfinished_frame_at_end_of_stream_is_returned_truncated() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"\x0bMSH|cut") == []
    assert decoder.close() == Frame(b"MSH|cut", truncated=True)
    assert decoder.close() is None


def test_an_oversized_frame_is_refused() -> None:
    decoder = FrameDecoder(max_frame=10)
    with pytest.raises(FrameError):
        decoder.feed(b"\x0b" + b"x" * 11)
    assert decoder.feed(frame(b"ok")) == [Frame(b"ok")]
