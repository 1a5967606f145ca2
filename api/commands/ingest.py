"""`vidsight ingest URI`: decode, encode and compress a file (or read a live stream), printing
each event as it closes and a summary of what was saved."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from compressor import Event
from ingest import IngestError
from ingest.uris import SourceKind, default_stream_id, parse_source
from memory import MemoryBankError
from vidsight.processing import StreamProcessor
from vidsight.settings import Settings


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("ingest", help="decode, encode and compress a video file or live stream")
    p.add_argument("uri", help="file path, http(s) URL, rtsp:// URL, /dev/videoN or HLS playlist")
    p.add_argument("--stream", help="stream id (default: derived from the URI)")
    p.add_argument("--fps", type=float, default=None, help="frames kept per second (default: settings)")
    p.add_argument("--workers", type=int, default=None, help="parallel decoders for files (0: one per core)")
    p.add_argument("--seconds", type=float, default=60.0, help="how long to read a live stream")
    p.add_argument("--local", action="store_true", help="run in this process, without Ray")
    p.add_argument("--no-store", action="store_true", help="print events without adding them to memory")
    p.add_argument("--no-text", action="store_true", help="skip the OCR and speech channels (files)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    updates: dict[str, Any] = {}
    if args.fps:
        updates["sample_fps"] = args.fps
    if args.workers is not None:
        updates["decode_workers"] = args.workers
    ingest_settings = settings.ingest.model_copy(update=updates)
    printer = _Printer(args.json)
    bank = text = None
    try:
        spec = parse_source(args.uri, allowed_schemes=ingest_settings.allowed_schemes)
        stream_id = args.stream or default_stream_id(spec.uri)
        encoder = _encoder(settings, args.local)
        processor = StreamProcessor(stream_id, encoder, settings.compressor)
        started = time.perf_counter()
        if not args.no_store:
            from memory import MemoryBank

            bank = MemoryBank(settings.memory, data_dir=settings.data_dir, redis_url=settings.redis_url)
            clock = "pts" if spec.kind == SourceKind.FILE else "wall"
            bank.register_stream(stream_id, clock, {"uri": spec.uri})
        if spec.kind == SourceKind.FILE:
            from vidsight.recorded import TextChannels, ingest_recorded

            if not args.no_text and not args.no_store:
                text = TextChannels(settings.text, settings.data_dir)
            result = ingest_recorded(
                spec.target,
                processor,
                ingest_settings,
                text=text,
                sink=None if bank is None else bank.add,
                executor="threads" if args.local else "ray",
                on_event=printer.event,
            )
            summary = result.to_dict()
        else:
            summary = _process_live(args, spec.uri, processor, ingest_settings, printer, bank).to_dict()
    except (IngestError, MemoryBankError) as exc:
        printer.error(str(exc))
        return 1
    finally:
        if text is not None:
            text.close()
        if bank is not None:
            bank.close()
    printer.summary(
        {
            **summary,
            "uri": args.uri,
            "stored": bank is not None,
            "seconds": round(time.perf_counter() - started, 3),
        }
    )
    return 0


def _encoder(settings: Settings, local: bool) -> Any:
    if local:
        from encoder import Encoder

        return Encoder(settings.encoder)
    from vidsight.pipeline import ActorEncoder, EncoderActor, init_ray

    init_ray(settings.ray_address)
    return ActorEncoder(EncoderActor.remote(settings.encoder))  # type: ignore[attr-defined]


def _process_live(
    args: argparse.Namespace,
    uri: str,
    processor: StreamProcessor,
    settings: Any,
    printer: _Printer,
    bank: Any,
) -> Any:
    """Network sources: live ones for --seconds (batches as they come), finite ones to the end."""
    from ingest import LiveSource, open_source

    source = open_source(uri, fps=settings.sample_fps, stream_id=processor.stream_id, settings=settings)
    try:
        if isinstance(source, LiveSource):
            source.reader.start()
            deadline = time.monotonic() + args.seconds
            while time.monotonic() < deadline and not (source.reader.is_finished and not len(source.reader)):
                for event in processor.process(source.reader.get_batch(8, 0.5)):
                    _store(bank, event)
                    printer.event(event)
        else:
            batch = []
            for frame in source:
                batch.append(frame)
                if len(batch) >= 8:
                    for event in processor.process(batch):
                        _store(bank, event)
                        printer.event(event)
                    batch = []
            for event in processor.process(batch):
                _store(bank, event)
                printer.event(event)
        for event in processor.flush():
            _store(bank, event)
            printer.event(event)
    finally:
        source.close()
    return processor.report


def _store(bank: Any, event: Event) -> None:
    if bank is not None:
        bank.add(event)


class _Printer:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def event(self, event: Event) -> None:
        fields = {
            "event": event.event_id,
            "start_s": round(event.start_pts_s, 3),
            "end_s": round(event.end_pts_s, 3),
            "frames": event.stats.frames,
            "tokens_in": event.stats.tokens_in,
            "tokens_kept": event.stats.tokens_kept,
        }
        if self.as_json:
            print(json.dumps(fields), flush=True)
        else:
            print(
                f"event {fields['event']}: {fields['start_s']:.1f}-{fields['end_s']:.1f} s, "
                f"{fields['frames']} frames, tokens {fields['tokens_kept']}/{fields['tokens_in']}",
                flush=True,
            )

    def summary(self, fields: dict[str, Any]) -> None:
        print(
            json.dumps({"summary": fields})
            if self.as_json
            else "summary: " + "  ".join(f"{k}={v}" for k, v in fields.items())
        )

    def error(self, message: str) -> None:
        print(json.dumps({"error": message}) if self.as_json else f"error: {message}", flush=True)
