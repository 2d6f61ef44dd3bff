"""The drop-in for the old backend: its words, template and cleanup options, as they are."""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

from ._native import (
    Assembler,
    CancelToken,
    InvalidSpecError,
    ProgressEvent,
    Report,
    cleanup_from_backend,
)

PathLike = Union[str, "os.PathLike[str]"]

_SEGMENT_FIELDS = ("gain_db", "fade_in_s", "fade_out_s", "crossfade_s", "chapter_title")
_BED_FIELDS = ("apply_to_segments", "start_offset_s", "end_offset_s", "fade_in_s",
               "fade_out_s", "volume_db")


def _spec_error(problems: List[Dict[str, str]]) -> InvalidSpecError:
    err = InvalidSpecError(
        "invalid spec: " + "; ".join(f"{p['path']}: {p['message']}" for p in problems))
    err.errors = problems
    err.problems = [(p["path"], p["message"]) for p in problems]
    return err


def _template(template: Mapping[str, Any], assets: Mapping[str, PathLike],
              used: Dict[str, str], problems: List[Dict[str, str]],
              local_paths: bool = True) -> Dict[str, Any]:
    """The backend's template dict -> the spec's ``template``; fills ``used`` with the assets.
    ``local_paths``: a name missing from ``assets`` may be an existing local file."""

    def asset_for(path: str, keys: Sequence[Optional[str]]) -> Optional[str]:
        for key in keys:
            if key is None:
                continue
            if key in assets:
                used[key] = os.fspath(assets[key])
                return key
        for key in keys if local_paths else ():  # a filename that is itself a local path
            if key is not None and os.path.isfile(key):
                used[key] = key
                return key
        problems.append({"path": path, "message": "none of " + ", ".join(
            repr(k) for k in keys if k is not None) + " is in assets"})
        return None

    segments = []
    for i, seg in enumerate(template.get("segments") or []):
        kind = seg.get("segment_type")
        out: Dict[str, Any] = {"segment_type": kind}
        if seg.get("id") is not None:
            out["id"] = str(seg["id"])
        if kind == "content":
            out["asset"] = "content"
        else:
            source = seg.get("source") or {}
            key = asset_for(f"template.segments[{i}].source", [
                source.get("filename"), source.get("asset_id"), source.get("id"),
                out.get("id")])
            if key is None:
                continue
            out["asset"] = key
        for f in _SEGMENT_FIELDS:
            if seg.get(f) is not None:
                out[f] = seg[f]
        segments.append(out)

    beds = []
    for i, rule in enumerate(template.get("background_music_rules") or []):
        key = asset_for(f"template.background_music_rules[{i}]",
                        [rule.get("music_filename"), rule.get("music_asset_id")])
        if key is None:
            continue
        bed: Dict[str, Any] = {"asset": key}
        for f in _BED_FIELDS:
            if rule.get(f) is not None:
                bed[f] = rule[f]
        beds.append(bed)

    out_t: Dict[str, Any] = {"segments": segments, "background_music_rules": beds}
    timing = template.get("timing") or {}
    t = {k: timing[k] for k in ("content_start_offset_s", "outro_start_offset_s")
         if timing.get(k) is not None}
    if t:
        out_t["timing"] = t
    return out_t


_EXTRA_OUTPUT_KEYS = ("path", "format", "bitrate_kbps", "channels", "sample_rate", "target_lufs",
                      "true_peak_dbtp")


def _encoding(fmt: str, bitrate_kbps: int, field: str) -> Dict[str, Any]:
    """The spec's ``encoding`` for ``mp3`` (CBR at ``bitrate_kbps``), ``wav`` or ``flac``."""
    fmt = str(fmt).lower()
    if fmt == "mp3":
        return {"format": "mp3", "bitrate": {"mode": "cbr", "kbps": bitrate_kbps}}
    if fmt in ("wav", "flac"):
        return {"format": fmt}
    raise _spec_error([{"path": field,
                        "message": f"must be 'mp3', 'wav' or 'flac', got {fmt!r}"}])


def _extra_output(i: int, o: Mapping[str, Any]) -> Dict[str, Any]:
    """One of ``extra_outputs`` -> a spec output with its own ``master`` when it sets one."""
    field = f"extra_outputs[{i}]"
    unknown = [k for k in o if k not in _EXTRA_OUTPUT_KEYS]
    if unknown or "path" not in o:
        message = (f"unknown key {unknown[0]!r} (known: {', '.join(_EXTRA_OUTPUT_KEYS)})"
                   if unknown else "missing 'path'")
        raise _spec_error([{"path": f"{field}.{unknown[0]}" if unknown else field,
                            "message": message}])
    out: Dict[str, Any] = {
        "path": os.fspath(o["path"]),
        "encoding": _encoding(o.get("format", "mp3"), o.get("bitrate_kbps", 128),
                              f"{field}.format"),
    }
    for key in ("channels", "sample_rate"):
        if key in o:
            out[key] = o[key]
    master = {k: o[src] for k, src in (("target_lufs", "target_lufs"),
                                       ("ceiling_dbtp", "true_peak_dbtp")) if src in o}
    if master:
        out["master"] = master
    return out


def episode_spec(
    content_path: PathLike,
    *,
    output_path: PathLike,
    words: Union[None, PathLike, Sequence[Mapping[str, Any]], Mapping[str, Any]] = None,
    template: Optional[Mapping[str, Any]] = None,
    assets: Optional[Mapping[str, PathLike]] = None,
    cleanup_options: Optional[Mapping[str, Any]] = None,
    output_format: str = "mp3",
    bitrate_kbps: int = 128,
    target_lufs: float = -16.0,
    true_peak_dbtp: float = -1.0,
    cleaned_output_path: Optional[PathLike] = None,
    work_dir: Optional[PathLike] = None,
    local_paths: bool = True,
    extra_outputs: Optional[Sequence[Mapping[str, Any]]] = None,
) -> Dict[str, Any]:
    """The spec dict ``assemble_episode`` runs (same arguments); useful for ``submit()``.

    ``local_paths=False`` makes ``assets`` the only files the spec can name: a template
    filename or cleanup clip missing from it is an error even when it is an existing local
    path (a service confining its inputs wants this; the answer is the same whether the path
    exists or not).

    ``extra_outputs``: more files from the same job (see ``assemble_episode``); the spec then
    has ``outputs`` (the main output first) instead of ``output``.

    Raises ``InvalidSpecError`` when a template source or music bed names no known asset, a
    cleanup option has the wrong type, or an extra output has an unknown key or format.
    """
    assets = dict(assets or {})
    problems: List[Dict[str, str]] = []
    used: Dict[str, str] = {}
    spec: Dict[str, Any] = {"version": 1, "content": os.fspath(content_path)}

    if words is not None:
        if isinstance(words, (str, os.PathLike)):
            spec["transcript"] = {"format": "words", "path": os.fspath(words)}
        else:
            inline = words if isinstance(words, Mapping) else list(words)
            spec["transcript"] = {"format": "words", "inline": inline}

    if template is not None:
        spec["template"] = _template(template, assets, used, problems, local_paths)

    if cleanup_options is not None:
        cleanup, unknown = cleanup_from_backend(dict(cleanup_options))
        for warning in unknown:
            warnings.warn(warning["message"], UserWarning, stacklevel=3)
        spec["cleanup"] = cleanup
        for item in list(cleanup.get("inserts", [])) + list(cleanup.get("sound_effects", [])):
            clip = item.get("clip")
            if clip in assets:
                used[clip] = os.fspath(assets[clip])
            elif local_paths and clip is not None and os.path.isfile(clip):
                used[clip] = clip

    if problems:
        raise _spec_error(problems)
    if used:
        spec["assets"] = used

    output: Dict[str, Any] = {"path": os.fspath(output_path),
                              "encoding": _encoding(output_format, bitrate_kbps, "output_format")}
    if cleaned_output_path is not None:
        output["cleaned_content"] = os.fspath(cleaned_output_path)
    if extra_outputs:
        spec["outputs"] = [output] + [_extra_output(i, o) for i, o in enumerate(extra_outputs)]
    else:
        spec["output"] = output
    spec["master"] = {"target_lufs": target_lufs, "ceiling_dbtp": true_peak_dbtp}
    if work_dir is not None:
        spec["work_dir"] = os.fspath(work_dir)
    return spec


def assemble_episode(
    content_path: PathLike,
    *,
    output_path: PathLike,
    words: Union[None, PathLike, Sequence[Mapping[str, Any]], Mapping[str, Any]] = None,
    template: Optional[Mapping[str, Any]] = None,
    assets: Optional[Mapping[str, PathLike]] = None,
    cleanup_options: Optional[Mapping[str, Any]] = None,
    output_format: str = "mp3",
    bitrate_kbps: int = 128,
    target_lufs: float = -16.0,
    true_peak_dbtp: float = -1.0,
    cleaned_output_path: Optional[PathLike] = None,
    work_dir: Optional[PathLike] = None,
    progress: Optional[Callable[[ProgressEvent], object]] = None,
    cancel: Optional[CancelToken] = None,
    extra_outputs: Optional[Sequence[Mapping[str, Any]]] = None,
) -> Report:
    """Cleans ``content_path`` and assembles the episode from the backend's own data.

    ``words``: the backend's list (``{word|text, start, end, speaker}`` in seconds, or
    ``start_ms``/``end_ms``) or a path to that JSON. ``template``: its dict (``segments`` with
    ``segment_type`` and ``source`` {``source_type``, ``filename``}, ``background_music_rules``
    with ``music_filename``/``music_asset_id``, ``timing``). ``assets`` maps every filename,
    asset id or segment id (pre-rendered TTS) to a local path. ``cleanup_options``: its
    camelCase keys. Runs with the GIL released; see ``Assembler.run`` for ``progress`` and
    ``cancel``.

    ``extra_outputs``: more files from the same job, each a dict with ``path`` and any of
    ``format`` (``"mp3"``, ``"wav"``, ``"flac"``; default mp3), ``bitrate_kbps`` (128),
    ``channels`` (2), ``sample_rate`` (44100), ``target_lufs`` and ``true_peak_dbtp``
    (default: the main output's). The content is decoded, cleaned, edited and arranged once;
    each output gets its own loudness plan, render and check. ``Report.outputs`` lists every
    file (the main one first) with its measured loudness. Spec errors name them
    ``outputs[1]``, ``outputs[2]``… (``outputs[0]`` is ``output_path``).

    >>> import podcast_assembly as pa
    >>> spec = pa.episode_spec("raw.wav", output_path="ep.mp3", extra_outputs=[
    ...     {"path": "ep-mono.mp3", "channels": 1, "bitrate_kbps": 64, "target_lufs": -19},
    ...     {"path": "ep.flac", "format": "flac"}])
    >>> [o["path"] for o in spec["outputs"]], spec["outputs"][1]["master"]
    (['ep.mp3', 'ep-mono.mp3', 'ep.flac'], {'target_lufs': -19})
    """
    spec = episode_spec(
        content_path,
        output_path=output_path,
        words=words,
        template=template,
        assets=assets,
        cleanup_options=cleanup_options,
        output_format=output_format,
        bitrate_kbps=bitrate_kbps,
        target_lufs=target_lufs,
        true_peak_dbtp=true_peak_dbtp,
        cleaned_output_path=cleaned_output_path,
        work_dir=work_dir,
        extra_outputs=extra_outputs,
    )
    return Assembler(spec).run(progress=progress, cancel=cancel)
