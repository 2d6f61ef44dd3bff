"""The request payload: its schema, path confinement and the canonical form that is hashed.

``prepare`` turns a parsed :class:`AssembleRequest` into the canonical payload a job stores:
every path resolved (symlinks included) and checked against the media root or the output
root, defaults filled in. Nothing here writes to disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Dict, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .config import Settings

EPISODE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class Word(BaseModel):
    """One timed word, in the backend's shapes: ``word`` or ``text``; ``start``/``end`` in
    seconds or ``start_ms``/``end_ms``. Other keys (confidence, punctuation...) pass through."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    word: Optional[str] = None
    text: Optional[str] = None
    start: Optional[float] = Field(None, ge=0.0)
    end: Optional[float] = Field(None, ge=0.0)
    start_ms: Optional[int] = Field(None, ge=0)
    end_ms: Optional[int] = Field(None, ge=0)
    speaker: Optional[Union[str, int]] = None

    @model_validator(mode="after")
    def _complete(self) -> "Word":
        if self.word is None and self.text is None:
            raise ValueError("needs 'word' or 'text'")
        if self.start is not None and self.end is not None:
            if self.end < self.start:
                raise ValueError("'end' is before 'start'")
        elif self.start_ms is not None and self.end_ms is not None:
            if self.end_ms < self.start_ms:
                raise ValueError("'end_ms' is before 'start_ms'")
        else:
            raise ValueError("needs 'start' and 'end' (seconds) or 'start_ms' and 'end_ms'")
        return self


class ExtraOutput(BaseModel):
    """One more file from the same job: its own format, bitrate, channels, rate and loudness
    target (``podcast_assembly.assemble_episode``'s ``extra_outputs``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_max_length=4096)

    path: str = Field(min_length=1, description="Output path; an extension, if any, must be "
                      "`.<format>`.")
    format: Literal["mp3", "wav", "flac"] = Field("mp3", description="Default: `mp3`.")
    bitrate_kbps: int = Field(128, ge=32, le=320, description="MP3 bitrate. Default: `128`.")
    channels: Optional[Literal[1, 2]] = Field(None, description="Default: 2.")
    sample_rate: Optional[int] = Field(None, ge=8000, le=192000,
                                       description="Default: 44100.")
    target_lufs: Optional[float] = Field(None, ge=-40.0, le=-5.0,
                                         description="Default: the job's `target_lufs`.")
    true_peak_dbtp: Optional[float] = Field(None, ge=-9.0, le=0.0,
                                            description="Default: the job's `true_peak_dbtp`.")


class AssembleRequest(BaseModel):
    """``POST /api/tasks/assemble``: what ``podcast_assembly.assemble_episode`` needs.

    Input paths are relative to the media root (or absolute inside it); output paths are
    relative to the output root (or absolute inside it).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_max_length=4096)

    episode_id: str = Field(pattern=EPISODE_ID_PATTERN,
                            description="The backend's episode id; one active job per episode.")
    content_path: str = Field(min_length=1, description="The raw recording.")
    output_path: Optional[str] = Field(
        None, min_length=1, description="The finished episode. Default: `<episode_id>.<format>` "
        "in the output root.")
    cleaned_output_path: Optional[str] = Field(
        None, min_length=1, description="Also write the cleaned content alone here. "
        "Default: not written.")
    words: Optional[List[Word]] = Field(
        None, max_length=500_000, description="Word timings `{word|text, start, end, speaker}` "
        "in seconds (or `start_ms`/`end_ms`). Default: none (no transcript edits).")
    template: Optional[Dict[str, Any]] = Field(
        None, description="The backend's template dict (segments, background_music_rules, "
        "timing). Default: the content alone.")
    assets: Dict[str, str] = Field(
        default_factory=dict, max_length=1000,
        description="Template filename / asset id / segment id -> path. Default: `{}`.")
    cleanup_options: Optional[Dict[str, Any]] = Field(
        None, description="The backend's camelCase cleanup options. Default: none.")
    output_format: Literal["mp3", "wav", "flac"] = Field("mp3", description="Default: `mp3`.")
    bitrate_kbps: int = Field(128, ge=32, le=320, description="MP3 bitrate. Default: `128`.")
    target_lufs: float = Field(-16.0, ge=-40.0, le=-5.0, description="Default: `-16.0`.")
    true_peak_dbtp: float = Field(-1.0, ge=-9.0, le=0.0, description="Default: `-1.0`.")
    callback_url: Optional[str] = Field(
        None, max_length=2048, description="POSTed (signed) when the job reaches a terminal "
        "state: http or https. Default: none.")
    extra_outputs: List[ExtraOutput] = Field(
        default_factory=list, max_length=8, description="More files from the same job (a mono "
        "MP3 at -19, a FLAC master...): decoded, cleaned and arranged once, each mastered and "
        "checked on its own. Default: none.")


class Rejected(ValueError):
    """A field of the request is not acceptable (a path outside its root, a missing file);
    ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _checked_name(field: str, value: str) -> PurePath:
    if "\x00" in value:
        raise Rejected(field, "contains a NUL byte")
    p = PurePath(value)
    if ".." in p.parts:
        raise Rejected(field, "must not contain '..'")
    return p


def resolve_input(field: str, value: str, media_root: Path) -> str:
    """The real path of an existing regular file inside ``media_root``."""
    p = _checked_name(field, value)
    root = os.path.realpath(media_root)
    full = os.path.realpath(p if p.is_absolute() else Path(root) / p)
    if not _inside(full, root):
        raise Rejected(field, "resolves outside the media root")
    if not os.path.isfile(full):
        raise Rejected(field, "no such file in the media root")
    return full


def resolve_output(field: str, value: str, output_root: Path) -> str:
    """The real path an output will get, inside ``output_root`` (the file may not exist)."""
    p = _checked_name(field, value)
    root = os.path.realpath(output_root)
    full = os.path.realpath(p if p.is_absolute() else Path(root) / p)
    if not _inside(full, root) or full == root:
        raise Rejected(field, "resolves outside the output root")
    if os.path.isdir(full):
        raise Rejected(field, "is a directory")
    return full


@dataclass(frozen=True)
class Prepared:
    """A validated request: the canonical payload, its idempotency key, its output paths."""

    episode_id: str
    payload: Dict[str, Any]
    idem_key: str
    output_paths: List[str]


def canonical_json(data: Any) -> str:
    """Sorted keys, no whitespace: equal payloads give equal bytes."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def _field_path(parent: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else str(key)


def _lone_surrogate(value: Any, where: str = "") -> Optional[str]:
    """The field path of the first string (or key) in ``value`` holding a lone surrogate
    (``"\\ud800"`` is valid JSON but not Unicode text: it cannot be encoded as UTF-8)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where or "body"
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            here = _field_path(where, k)
            if isinstance(k, str) and _lone_surrogate(k) is not None:
                return where or "body"
            found = _lone_surrogate(v, here)
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found = _lone_surrogate(v, _field_path(where, i))
            if found is not None:
                return found
    return None


def check_counts(req: AssembleRequest, settings: Settings) -> None:
    """The per-request caps on list sizes (``max_segments``, ``max_assets``, ``max_words``)."""
    if req.words is not None and len(req.words) > settings.max_words:
        raise Rejected("words", f"has {len(req.words)} entries; at most {settings.max_words}")
    if len(req.assets) > settings.max_assets:
        raise Rejected("assets", f"has {len(req.assets)} entries; at most "
                                 f"{settings.max_assets}")
    lists = [(f"template.{k}", (req.template or {}).get(k))
             for k in ("segments", "background_music_rules")]
    lists += [(f"cleanup_options.{k}", (req.cleanup_options or {}).get(k))
              for k in ("insertedClips", "soundEffects")]
    for name, items in lists:
        if isinstance(items, list) and len(items) > settings.max_segments:
            raise Rejected(name, f"has {len(items)} entries; at most {settings.max_segments}")


def check_template_shape(template: Optional[Dict[str, Any]]) -> None:
    """The template's containers have the backend's shapes (lists of objects), so building
    the spec meets no surprise; their contents are the library's to validate."""
    if template is None:
        return
    for key in ("segments", "background_music_rules"):
        items = template.get(key)
        if items is None:
            continue
        if not isinstance(items, list):
            raise Rejected(f"template.{key}", "must be a list")
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise Rejected(f"template.{key}[{i}]", "must be an object")
            if key == "segments" and not isinstance(item.get("source") or {}, dict):
                raise Rejected(f"template.{key}[{i}].source", "must be an object")
    if not isinstance(template.get("timing") or {}, dict):
        raise Rejected("template.timing", "must be an object")


def check_input_duration(content: str, assets: Dict[str, str], settings: Settings) -> float:
    """The content and each distinct asset file together last at most
    ``max_input_duration_s`` (lengths from the headers; a file that cannot be probed counts 0
    here: decoding it fails the job with the real error). Returns their seconds."""
    import podcast_assembly as pa

    limit_ms = settings.max_input_duration_s * 1000
    total_ms = 0
    for i, path in enumerate(dict.fromkeys([content, *assets.values()])):
        try:
            total_ms += int(pa.probe(path)["duration_ms"])
        except (pa.AssemblyError, OSError):
            continue
        if total_ms > limit_ms:
            raise Rejected("content_path" if i == 0 else "assets",
                           f"the inputs last more than {settings.max_input_duration_s:g} s "
                           "together (max_input_duration_s)")
    return total_ms / 1000


def prepare(req: AssembleRequest, settings: Settings) -> Prepared:
    """Resolves and confines every path; raises :class:`Rejected` naming the field."""
    bad = _lone_surrogate(req.model_dump())
    if bad is not None:
        raise Rejected(bad, "is not valid Unicode text (a lone surrogate such as \\ud800)")
    media = settings.media_root
    assert settings.output_root is not None
    check_counts(req, settings)
    check_template_shape(req.template)
    if req.callback_url is not None:
        url = urllib.parse.urlsplit(req.callback_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise Rejected("callback_url", "must be an http:// or https:// URL with a host")
    content = resolve_input("content_path", req.content_path, media)
    assets = {name: resolve_input(f"assets.{name}", path, media)
              for name, path in sorted(req.assets.items())}
    input_s = check_input_duration(content, assets, settings)
    output = resolve_output("output_path",
                            req.output_path or f"{req.episode_id}.{req.output_format}",
                            settings.output_root)
    cleaned = (resolve_output("cleaned_output_path", req.cleaned_output_path,
                              settings.output_root)
               if req.cleaned_output_path is not None else None)
    extras = [resolve_output(f"extra_outputs[{i}].path", o.path, settings.output_root)
              for i, o in enumerate(req.extra_outputs)]
    inputs = {content, *assets.values()}
    # (field, resolved path, format, the field that set the format)
    shared = f"output_format is {req.output_format!r} (the cleaned content uses it too)"
    named = [("output_path", output, req.output_format, shared),
             ("cleaned_output_path", cleaned, req.output_format, shared)]
    named += [(f"extra_outputs[{i}].path", path, o.format,
               f"extra_outputs[{i}].format is {o.format!r}")
              for i, (path, o) in enumerate(zip(extras, req.extra_outputs))]
    seen: Dict[str, str] = {}
    for name, path, fmt, format_is in named:
        if path is None:
            continue
        if path in inputs:
            raise Rejected(name, "is one of the inputs")
        ext = os.path.splitext(path)[1].lower()
        if ext and ext != f".{fmt}":
            raise Rejected(name, f"ends in {ext!r} but {format_is}")
        if path in seen:
            raise Rejected(name, f"is the same file as {seen[path]}")
        seen[path] = name
    payload = req.model_dump(exclude={"words", "extra_outputs"})
    payload["words"] = (None if req.words is None
                        else [w.model_dump(exclude_none=True) for w in req.words])
    payload.update(content_path=content, assets=assets, output_path=output,
                   cleaned_output_path=cleaned)
    if extras:  # absent when none, so a request without them keeps its idempotency key
        payload["extra_outputs"] = [dict(o.model_dump(exclude_none=True), path=path)
                                    for path, o in zip(extras, req.extra_outputs)]
    try:
        text = canonical_json(payload)
    except ValueError:  # NaN / Infinity inside words, template or cleanup_options
        raise Rejected("body", "NaN and Infinity are not JSON numbers") from None
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    # Not part of the key (it follows from the files): the attempt deadline's measure.
    payload["input_duration_s"] = input_s
    outputs = [output] + ([cleaned] if cleaned else []) + extras
    return Prepared(req.episode_id, payload, f"{req.episode_id}:{digest}", outputs)
