"""Assemble, clean and master podcast episodes; the work runs in Rust with the GIL released.

Quick start::

    import podcast_assembly as pa

    report = pa.Assembler({
        "version": 1,
        "content": "raw.wav",
        "output": {"path": "episode.mp3"},
    }).run(progress=lambda e: print(e.stage, round(e.overall * 100)))
    print(report.duration_ms, report.loudness["integrated_lufs"])

See ``docs/python.md`` in the repository for the whole API, a FastAPI worker example and the
``assemble_episode`` drop-in for the old pydub pipeline.
"""

from ._native import (
    AssemblyError,
    Assembler,
    CancelledError,
    CancelToken,
    DecodeError,
    EncodeError,
    InternalError,
    InvalidSpecError,
    Job,
    LimitExceededError,
    ProgressEvent,
    Report,
    UnsupportedFormatError,
    __version__,
    probe,
)
from ._backend import assemble_episode, episode_spec

__all__ = [
    "Assembler",
    "AssemblyError",
    "CancelToken",
    "CancelledError",
    "DecodeError",
    "EncodeError",
    "InternalError",
    "InvalidSpecError",
    "Job",
    "LimitExceededError",
    "ProgressEvent",
    "Report",
    "UnsupportedFormatError",
    "__version__",
    "assemble_episode",
    "episode_spec",
    "probe",
]
