"""assemble_episode: the backend's words, template and cleanup options as they are (DESIGN §5)."""

from __future__ import annotations

import inspect
import json
import random
import warnings
from pathlib import Path

import pytest

import podcast_assembly as pa
from podcast_assembly._native import cleanup_from_backend
from conftest import RATE, read_wav, script, speech, tone, write_wav

EXACT = {"fillerLeadTrimMs": 0, "fillerTailTrimMs": 0}


def test_signature_is_exactly_the_backends():
    params = inspect.signature(pa.assemble_episode).parameters
    got = [(n, p.kind.name, p.default) for n, p in params.items()]
    empty = inspect.Parameter.empty
    assert got == [
        ("content_path", "POSITIONAL_OR_KEYWORD", empty),
        ("output_path", "KEYWORD_ONLY", empty),
        ("words", "KEYWORD_ONLY", None),
        ("template", "KEYWORD_ONLY", None),
        ("assets", "KEYWORD_ONLY", None),
        ("cleanup_options", "KEYWORD_ONLY", None),
        ("output_format", "KEYWORD_ONLY", "mp3"),
        ("bitrate_kbps", "KEYWORD_ONLY", 128),
        ("target_lufs", "KEYWORD_ONLY", -16.0),
        ("true_peak_dbtp", "KEYWORD_ONLY", -1.0),
        ("cleaned_output_path", "KEYWORD_ONLY", None),
        ("work_dir", "KEYWORD_ONLY", None),
        ("progress", "KEYWORD_ONLY", None),
        ("cancel", "KEYWORD_ONLY", None),
        ("extra_outputs", "KEYWORD_ONLY", None),
    ]


def _content(tmp_path: Path, words, duration_s=3.0) -> Path:
    spans = [(w.get("word") or w.get("text"), w.get("start", w.get("start_ms", 0) / 1000),
              w.get("end", w.get("end_ms", 0) / 1000)) for w in words]
    return write_wav(tmp_path / "raw.wav", speech(spans, duration_s))


def _tail(t0: float):
    """Padding words after the vector so the clip is long enough to measure loudness."""
    out, t = [], t0
    for i in range(6):
        out.append({"word": f"pad{i}", "start": round(t, 3), "end": round(t + 0.25, 3),
                    "speaker": "A"})
        t += 0.35
    return out


def test_vector_fillers_exact_span(tmp_path):
    words = [
        {"word": "Hello", "start": 0.0, "end": 0.1, "speaker": "A"},
        {"word": "um", "start": 0.1, "end": 0.2, "speaker": "A"},
        {"word": "uh", "start": 0.2, "end": 0.3, "speaker": "A"},
        {"word": "world", "start": 0.3, "end": 0.5, "speaker": "A"},
    ] + _tail(0.6)
    content = _content(tmp_path, words)
    report = pa.assemble_episode(content, output_path=tmp_path / "ep.wav", words=words,
                                 cleanup_options=EXACT, output_format="wav")
    by = {w["word"]: w for w in report.words}
    assert "um" not in by and "uh" not in by
    assert report.content_words == report.words  # no template: the episode is the content
    assert by["world"]["start"] == pytest.approx(0.10, abs=0.001)
    assert by["world"]["end"] == pytest.approx(0.30, abs=0.001)
    frames, rate, _ = read_wav(tmp_path / "ep.wav")
    # 3.0 s minus the 0.2 s removed, to the ms.
    assert frames * 1000 // rate == pytest.approx(2800, abs=1) and report.duration_ms == 2800


def test_vector_pause_shortened_and_ms_words(tmp_path):
    # AssemblyAI style: text and milliseconds.
    words = [{"text": "A", "start_ms": 0, "end_ms": 100, "speaker": "A"},
             {"text": "B", "start_ms": 2000, "end_ms": 2100, "speaker": "A"}]
    words += [{"text": w["word"], "start_ms": int(w["start"] * 1000),
               "end_ms": int(w["end"] * 1000)} for w in _tail(2.3)]
    content = _content(tmp_path, words, duration_s=4.5)
    (tmp_path / "words.json").write_text(json.dumps(words))
    # A pause L > max keeps max(target, ratio * L): ratio 0.2 -> 0.5 s kept, B at 0.6 s.
    report = pa.assemble_episode(
        str(content), output_path=str(tmp_path / "ep.mp3"), words=str(tmp_path / "words.json"),
        cleanup_options={**EXACT, "maxPauseSeconds": 1.5, "targetPauseSeconds": 0.5,
                         "pauseCompressionRatio": 0.2},
        bitrate_kbps=192)
    b = next(w for w in report.words if w["word"] == "B")
    assert (b["start"], b["end"]) == (pytest.approx(0.6, abs=0.001), pytest.approx(0.7, abs=0.001))
    assert report.duration_ms == 4500 - 1400
    # The backend's default ratio 0.4 keeps 0.4 * 1.9 = 0.76 s: B at 0.86 s.
    default = pa.assemble_episode(
        content, output_path=tmp_path / "ep2.wav", words=words, output_format="wav",
        cleanup_options={**EXACT, "maxPauseSeconds": 1.5, "targetPauseSeconds": 0.5})
    b = next(w for w in default.words if w["word"] == "B")
    assert b["start"] == pytest.approx(0.86, abs=0.001)
    # 192 kbps CBR: the size is the bitrate times the duration (plus tag/padding).
    expected = 192_000 / 8 * report.duration_ms / 1000
    assert expected * 0.95 < report.size_bytes < expected * 1.15


def test_vector_filler_phrases_match_case_and_punctuation(tmp_path):
    words = [{"word": "Uh,", "start": 0.0, "end": 0.2}, {"word": "I", "start": 0.2, "end": 0.3},
             {"word": "mean—", "start": 0.3, "end": 0.5}, {"word": "yes", "start": 0.5, "end": 0.8}]
    words += _tail(0.9)
    content = _content(tmp_path, words)
    report = pa.assemble_episode(content, output_path=tmp_path / "ep.wav", words=words,
                                 output_format="wav",
                                 cleanup_options={**EXACT, "fillerWords": ["uh", "i mean"]})
    texts = [w["word"] for w in report.words]
    assert texts[0] == "yes" and "I" not in texts and "Uh," not in texts
    assert report.words[0]["start"] == pytest.approx(0.0, abs=0.001)
    assert report.duration_ms == 3000 - 500


def test_backend_template_assets_and_cleaned_output(episode, tmp_path):
    template = {
        "segments": [
            {"id": "s1", "segment_type": "intro",
             "source": {"source_type": "static", "filename": "intro_music.wav"}},
            {"id": "s2", "segment_type": "commercial",
             "source": {"source_type": "tts", "filename": None}},
            {"id": "s3", "segment_type": "content", "source": {"source_type": "content"}},
            {"id": "s4", "segment_type": "outro",
             "source": {"source_type": "static", "filename": "outro_music.wav"}},
        ],
        "background_music_rules": [{"music_asset_id": "bed-17", "apply_to_segments": ["content"],
                                    "volume_db": -18.0, "fade_in_s": 1.0, "fade_out_s": 1.0}],
        "timing": {"content_start_offset_s": -0.5, "outro_start_offset_s": 0.0},
    }
    ad = write_wav(tmp_path / "ad.wav", tone(500.0, 1.5, 0.3))
    assets = {"intro_music.wav": episode.assets["intro"], "outro_music.wav": episode.assets["outro"],
              "bed-17": episode.assets["bed"], "s2": ad}
    events = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = pa.assemble_episode(
            episode.content, output_path=episode.dir / "out" / "final.mp3",
            words=episode.backend_words(), template=template, assets=assets,
            cleanup_options={"removeFillers": True, "someNewOption": 1},
            cleaned_output_path=episode.dir / "out" / "cleaned.mp3", progress=events.append,
            target_lufs=-19.0, true_peak_dbtp=-2.0)
    assert any("someNewOption" in str(w.message) for w in caught)
    # The native helper hands back coded warnings; the UserWarning carries the message text.
    _, unknown = cleanup_from_backend({"someNewOption": 1})
    assert unknown == [{"code": "unknown_option",
                        "message": 'unknown cleanup option "someNewOption" ignored'}]
    assert any(str(w.message) == unknown[0]["message"] for w in caught)
    ids = [(p["segment_type"]) for p in report.placements]
    assert ids == ["intro", "commercial", "content", "outro"]
    assert (episode.dir / "out" / "cleaned.mp3").stat().st_size > 1000
    assert abs(report.loudness["integrated_lufs"] + 19.0) <= 1.0
    assert report.loudness["true_peak_dbtp"] <= -2.0 + 0.3
    assert events and events[-1].overall == pytest.approx(1.0)
    # intro 2 + ad 1.5 - 0.5 overlap + content + outro 2 = content + 5 s
    content_ms = next(p for p in report.placements if p["segment_type"] == "content")
    assert report.duration_ms > 5000


def test_unknown_template_asset_and_bad_options(episode, tmp_path):
    template = {"segments": [
        {"id": "x", "segment_type": "intro", "source": {"source_type": "static",
                                                        "filename": "nowhere.wav"}},
        {"id": "c", "segment_type": "content", "source": {"source_type": "content"}}]}
    with pytest.raises(pa.InvalidSpecError) as info:
        pa.assemble_episode(episode.content, output_path=tmp_path / "o.mp3", template=template)
    assert info.value.errors[0]["path"] == "template.segments[0].source"
    with pytest.raises(pa.InvalidSpecError) as info:
        pa.assemble_episode(episode.content, output_path=tmp_path / "o.mp3",
                            cleanup_options={"maxPauseSeconds": "long"})
    assert info.value.errors[0]["path"] == "cleanup.maxPauseSeconds"
    with pytest.raises(pa.InvalidSpecError):
        pa.assemble_episode(episode.content, output_path=tmp_path / "o.ogg", output_format="ogg")
    with pytest.raises(FileNotFoundError):
        pa.assemble_episode(tmp_path / "nope.wav", output_path=tmp_path / "o.mp3")
    token = pa.CancelToken()
    token.cancel()
    with pytest.raises(pa.CancelledError):
        pa.assemble_episode(episode.content, output_path=tmp_path / "o.mp3", cancel=token)
    assert not (tmp_path / "o.mp3").exists()


def test_without_local_paths_only_assets_name_files(episode, tmp_path):
    """episode_spec(local_paths=False): a template filename or cleanup clip that is an existing
    file but not a key of assets is refused exactly like one that exists nowhere."""
    existing = str(episode.assets["intro"])
    missing = str(tmp_path / "nowhere.wav")
    answers = {}
    for name in (existing, missing):
        template = {"segments": [
            {"segment_type": "intro", "source": {"source_type": "static", "filename": name}},
            {"segment_type": "content", "source": {"source_type": "content"}}]}
        with pytest.raises(pa.InvalidSpecError) as info:
            pa.episode_spec(episode.content, output_path=tmp_path / "o.mp3", template=template,
                            local_paths=False)
        answers[name] = [(e["path"], e["message"].replace(name, "<name>"))
                         for e in info.value.errors]
        clip = pa.episode_spec(episode.content, output_path=tmp_path / "o.mp3",
                               cleanup_options={"insertedClips": [{"clip": name,
                                                                   "atSeconds": 1.0}]},
                               local_paths=False)
        assert "assets" not in clip  # the clip's path was not taken as an asset
    assert answers[existing] == answers[missing]
    assert answers[existing] == [("template.segments[0].source", "none of '<name>' is in assets")]
    # the default keeps the backend's behaviour: an existing local path is used as it is
    spec = pa.episode_spec(episode.content, output_path=tmp_path / "o.mp3", template={
        "segments": [{"segment_type": "intro",
                      "source": {"source_type": "static", "filename": existing}}]})
    assert spec["assets"] == {existing: existing}


def test_probe_reads_length_without_decoding_into_memory(episode, tmp_path):
    info = pa.probe(episode.content)
    assert info["container"] == "wav" and info["channels"] >= 1
    assert info["duration_ms"] == round(info["frames"] * 1000 / info["sample_rate"])
    assert info["frames_counted"] is False  # the PCM header is exact
    with pytest.raises(pa.LimitExceededError):
        pa.probe(episode.content, limits={"max_duration_s": 0.5})
    with pytest.raises(FileNotFoundError):
        pa.probe(tmp_path / "nope.wav")
    with pytest.raises(ValueError):
        pa.probe(episode.content, limits={"max_duraton_s": 1})


def test_an_input_that_blocks_on_open_does_not_hold_the_gil(tmp_path):
    """A FIFO without a writer (like a hung network mount) blocks the constructor's input
    check; the interpreter's other threads run meanwhile, and the call returns once the
    FIFO is opened for writing. Run in a child process: holding the GIL would freeze it."""
    import os
    import subprocess
    import sys

    fifo = tmp_path / "raw.wav"
    os.mkfifo(fifo)
    code = f"""
import os, threading, time
import podcast_assembly as pa
spec = {{"version": 1, "content": {str(fifo)!r}, "output": {{"path": {str(tmp_path / "o.mp3")!r}}}}}
result = []
def build():
    try:
        pa.Assembler(spec)
        result.append("built")
    except Exception as e:
        result.append(type(e).__name__)
t = threading.Thread(target=build)
t.start()
ticks = 0
t0 = time.monotonic()
while time.monotonic() - t0 < 0.5:
    ticks += 1
    time.sleep(0.01)
assert t.is_alive()
os.close(os.open({str(fifo)!r}, os.O_WRONLY | os.O_NONBLOCK))  # the blocked open returns
t.join(10)
print(ticks, result)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    ticks, result = out.stdout.split(" ", 1)
    assert int(ticks) > 20  # the other thread ran while the open was blocked
    assert "InvalidSpecError" in result  # then: a FIFO is not a file

def test_speaker_leveling_is_on_by_default_and_level_speakers_false_turns_it_off(tmp_path):
    # Two speakers 12 dB apart (0.4 and 0.1 peak), 6 s of words each, alternating.
    words, spans_a, spans_b = [], [], []
    t = 0.2
    for i in range(40):
        span = (f"w{i}", t, t + 0.3)
        (spans_a if i % 2 == 0 else spans_b).append(span)
        words.append({"word": span[0], "start": span[1], "end": span[2],
                      "speaker": "A" if i % 2 == 0 else "B"})
        t += 0.45
    duration = t + 0.5
    loud, quiet = speech(spans_a, duration, level=0.4), speech(spans_b, duration, level=0.1)
    content = write_wav(tmp_path / "raw.wav", [x + y for x, y in zip(loud, quiet)])
    opts = {"removeFillers": False, "removePauses": False}
    on = pa.assemble_episode(str(content), output_path=str(tmp_path / "on.wav"), words=words,
                             cleanup_options=opts, output_format="wav")
    lv = on.leveling
    assert lv is not None and [s["speaker"] for s in lv["speakers"]] == ["A", "B"]
    gains = {s["speaker"]: s["gain_db"] for s in lv["speakers"]}
    # 12 dB apart, brought together around the time-weighted mean: about -6 and +6 dB.
    assert abs((gains["B"] - gains["A"]) - 12.04) < 0.5, gains
    assert abs(gains["A"] + gains["B"]) < 0.5, gains
    assert len(lv["envelope"]["steps"]) == 39
    off = pa.assemble_episode(str(content), output_path=str(tmp_path / "off.wav"), words=words,
                              cleanup_options={**opts, "levelSpeakers": False},
                              output_format="wav")
    assert off.leveling is None
    assert "leveling" in on.to_dict() and on.to_dict()["leveling"] == lv


FIXTURES = Path(__file__).resolve().parents[2] / "assembly-core" / "tests" / "fixtures"


def test_content_recorded_in_a_browser_webm_opus_assembles(tmp_path):
    # What MediaRecorder uploads: Opus in WebM. The committed fixture is 2.912 s of espeak-ng
    # speech at 48 kHz (139786 frames, as ffmpeg decodes it); its Ogg twin holds the same packets.
    webm, ogg = FIXTURES / "speech_48k.webm", FIXTURES / "speech_48k.opus"
    report = pa.assemble_episode(webm, output_path=tmp_path / "ep.wav", output_format="wav")
    frames, rate, _ = read_wav(tmp_path / "ep.wav")
    assert frames * 1000 // rate == pytest.approx(report.duration_ms, abs=1)
    # Edge silence may be trimmed, speech never: the clip speaks from ~0.1 s to ~2.6 s.
    assert 2400 <= report.duration_ms <= 2912
    assert abs(report.loudness["integrated_lufs"] + 16.0) <= 1.0
    same = pa.assemble_episode(ogg, output_path=tmp_path / "ogg.wav", output_format="wav")
    assert same.duration_ms == report.duration_ms
    assert (tmp_path / "ogg.wav").read_bytes() == (tmp_path / "ep.wav").read_bytes()


def test_noisy_content_is_denoised_by_default_and_reported(tmp_path):
    # Speech bursts over white noise at about -45 dBFS RMS: 'auto' noise reduction engages.
    words = script(12.0)
    rng = random.Random(3)
    noisy = [x + rng.gauss(0.0, 0.0056) for x in speech(words, 12.0)]
    content = write_wav(tmp_path / "raw.wav", noisy)
    ws = [{"word": w, "start": a, "end": b} for w, a, b in words]
    on = pa.assemble_episode(str(content), output_path=str(tmp_path / "on.wav"), words=ws,
                             output_format="wav")
    n = on.cleaning["noise"]
    assert n["engaged"] and n["mode"] == "auto" and n["speech_to_noise_db"] < 35, n
    assert n["noise_floor_db"] - n["noise_floor_after_db"] > 10, n
    off = pa.assemble_episode(str(content), output_path=str(tmp_path / "off.wav"), words=ws,
                              output_format="wav", cleanup_options={"noiseReduction": False})
    m = off.cleaning["noise"]
    assert m["mode"] == "off" and not m["engaged"] and m["noise_floor_after_db"] is None, m
    assert on.to_dict()["cleaning"] == on.cleaning


def test_extra_outputs_each_land_on_their_own_target(episode):
    out = episode.dir / "out"
    report = pa.assemble_episode(
        episode.content, output_path=out / "ep.mp3", words=episode.backend_words(),
        extra_outputs=[
            {"path": out / "ep-mono.mp3", "channels": 1, "bitrate_kbps": 64,
             "target_lufs": -19.0},
            {"path": out / "ep.flac", "format": "flac", "true_peak_dbtp": -2.0},
        ])
    got = [(Path(o["path"]).name, o["channels"], o["target_lufs"], o["ceiling_dbtp"])
           for o in report.outputs]
    assert got == [("ep.mp3", 2, -16.0, -1.0), ("ep-mono.mp3", 1, -19.0, -1.0),
                   ("ep.flac", 2, -16.0, -2.0)]
    for o in report.outputs:
        loud = o["loudness"]
        assert abs(loud["integrated_lufs"] - o["target_lufs"]) <= 0.2, o
        assert loud["true_peak_dbtp"] <= o["ceiling_dbtp"], o
        info = pa.probe(o["path"])
        assert (info["channels"], info["sample_rate"]) == (o["channels"], 44100), info
        assert o["encodes"] == 1
    # The main output is also the report's top level, as with one output.
    assert report.final_path == report.outputs[0]["path"]
    assert report.loudness == report.outputs[0]["loudness"]


def test_extra_outputs_with_an_unknown_key_name_it(episode):
    with pytest.raises(pa.InvalidSpecError) as e:
        pa.episode_spec(episode.content, output_path=episode.dir / "out" / "ep.mp3",
                        extra_outputs=[{"path": "x.mp3", "chanels": 1}])
    assert e.value.problems[0][0] == "extra_outputs[0].chanels"
    with pytest.raises(pa.InvalidSpecError) as e:
        pa.episode_spec(episode.content, output_path=episode.dir / "out" / "ep.mp3",
                        extra_outputs=[{"path": "x.ogg", "format": "ogg"}])
    assert e.value.problems[0][0] == "extra_outputs[0].format"
