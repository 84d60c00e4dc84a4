"""`python -m bench.transcribe`: how fast adbvoice hears notes, per model and setting, and what it costs in words.

The notes are real speech made here: espeak-ng sentences (none with numbers, which Whisper
writes as digits) joined with pauses of 0.5 to 3 s — WhatsApp notes pause — into notes of 3 to
45 s, encoded as WhatsApp does (Ogg Opus, 16 kHz mono, ~20 kbit/s). Each setting runs in a
child process of its own (its peak RSS from getrusage(2)), through adbvoice's own engine
(adbvoice/speech/engine.py) with one knob changed: beam size, Silero VAD, CPU threads, or
faster-whisper's batched pipeline. Printed and written to bench/results-transcribe.md:
audio minutes per wall minute (model loading excluded, shown apart), word error rate
against the sentences spoken, and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = HERE.parent / ".venv" / "test-models"
SENTENCES = [
    "Hi, I'm on the train and will be home a little later than I said.",
    "Could you pick up some bread and milk on the way back please?",
    "Happy birthday grandma, we all miss you and send you a big hug.",
    "The meeting moved to the afternoon, so we can have lunch together.",
    "Remember to water the plants on the balcony while we are away.",
    "I found the keys in the pocket of my blue jacket, sorry about that.",
    "The doctor said everything looks fine and I should rest this week.",
    "Let me know if you want to come to the concert on Saturday evening.",
    "We are leaving early tomorrow morning, so please pack your bag tonight.",
    "The kids loved the park and the dog would not stop chasing the ducks.",
    "Thank you so much for the flowers, they made my whole day brighter.",
    "I will call you back when I get out of the supermarket.",
]
# name, model folder, engine knobs (see adbvoice/speech/engine.py)
SETTINGS = [
    ("tiny.en", "tiny.en", {"beam": 1, "vad": False, "threads": 2}),
    ("tiny.en", "tiny.en", {"beam": 5, "vad": False, "threads": 2}),
    ("tiny.en", "tiny.en", {"beam": 1, "vad": True, "threads": 2}),
    ("tiny.en", "tiny.en", {"beam": 1, "vad": False, "threads": 1}),
    ("tiny.en", "tiny.en", {"beam": 1, "vad": True, "threads": 2, "batched": 8}),
    ("base", "base", {"beam": 1, "vad": False, "threads": 2}),
    ("base", "base", {"beam": 5, "vad": False, "threads": 2}),
    ("base", "base", {"beam": 1, "vad": True, "threads": 2}),
]


def make_corpus(folder: Path, notes: int, seed: int) -> list[dict]:
    """`notes` spoken notes in `folder`; each with the words it says."""
    rng = random.Random(seed)
    spoken = {}
    for index, sentence in enumerate(SENTENCES):
        wav = folder / f"sentence-{index}.wav"
        subprocess.run(["espeak-ng", "-v", "en", "-s", "160", "-w", str(wav), sentence], check=True)
        spoken[sentence] = wav
    corpus = []
    for number in range(notes):
        said = rng.sample(SENTENCES, rng.choice((1, 1, 2, 3, 4, 6)))
        joined = folder / f"note-{number}.wav"
        with wave.open(str(joined), "wb") as out:
            for position, sentence in enumerate(said):
                with wave.open(str(spoken[sentence])) as part:
                    if position == 0:
                        out.setparams(part.getparams())
                    else:
                        out.writeframes(b"\0\0" * int(part.getframerate() * rng.uniform(0.5, 3.0)))
                    out.writeframes(part.readframes(part.getnframes()))
        opus = folder / f"note-{number}.opus"
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(joined), "-ar", "16000",
                        "-ac", "1", str(folder / "16k.wav")], check=True)
        subprocess.run(["opusenc", "--quiet", "--bitrate", "20", str(folder / "16k.wav"), str(opus)], check=True,
                       stderr=subprocess.DEVNULL)  # it names each RIFF chunk it skips
        corpus.append({"path": str(opus), "said": " ".join(said)})
    return corpus


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower().replace("’", "'"))


def word_errors(reference: str, heard: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, reference words): Levenshtein over words."""
    ref, hyp = words(reference), words(heard)
    row = list(range(len(hyp) + 1))
    for i, want in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, got in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (want != got))
    return row[-1], len(ref)


def child(model_dir: str, knobs: dict, corpus_file: str) -> None:
    """One setting over the corpus, in this process; prints one JSON line."""
    from adbvoice.speech import engine

    engine.BEAM_SIZE = knobs["beam"]
    engine.VAD_FILTER = knobs["vad"]
    corpus = json.loads(Path(corpus_file).read_text())
    started = time.monotonic()
    heard_by = engine.load(model_dir, threads=knobs["threads"])
    loaded = time.monotonic() - started
    choice = engine.LanguageChoice()
    results = []
    started = time.monotonic()
    for note in corpus:
        if knobs.get("batched"):
            from faster_whisper import BatchedInferencePipeline, decode_audio

            pipeline = BatchedInferencePipeline(heard_by._model)
            segments, info = pipeline.transcribe(decode_audio(note["path"]), batch_size=knobs["batched"],
                                                 beam_size=knobs["beam"], language="en")
            text, seconds = " ".join(s.text.strip() for s in segments), info.duration
        else:
            heard = heard_by.hear(Path(note["path"]), choice)
            text, seconds = heard.text, heard.duration_s
        results.append({"said": note["said"], "heard": text, "seconds": seconds})
    wall = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the child's own high-water mark
    print(json.dumps({"load_s": loaded, "wall_s": wall, "notes": results, "peak_rss_mb": peak}))


def run_setting(model_dir: Path, knobs: dict, corpus_file: Path) -> dict:
    process = subprocess.Popen([sys.executable, "-m", "bench.transcribe", "--child", str(model_dir),
                                json.dumps(knobs), str(corpus_file)], stdout=subprocess.PIPE, text=True,
                               cwd=HERE.parent)
    out, _ = process.communicate()
    if process.returncode:
        raise SystemExit(f"the setting {knobs} failed (exit {process.returncode})")
    return json.loads(out.strip().splitlines()[-1])


def label(knobs: dict) -> str:
    parts = [f"beam {knobs['beam']}", "VAD" if knobs["vad"] else "no VAD", f"{knobs['threads']} thread"
             + ("s" if knobs["threads"] > 1 else "")]
    if knobs.get("batched"):
        parts.append(f"batched {knobs['batched']}")
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--notes", type=int, default=16, help="spoken notes in the corpus")
    parser.add_argument("--reps", type=int, default=1, help="runs of each setting; the fastest is kept")
    parser.add_argument("--only", help="only the settings of this model (tiny.en or base)")
    parser.add_argument("--out", type=Path, default=HERE / "results-transcribe.md")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], json.loads(args.child[1]), args.child[2])
        return
    with tempfile.TemporaryDirectory(prefix="bench-transcribe-") as scratch:
        folder = Path(scratch)
        corpus = make_corpus(folder, args.notes, seed=23)
        corpus_file = folder / "corpus.json"
        corpus_file.write_text(json.dumps(corpus))
        rows = []
        for name, folder_name, knobs in SETTINGS:
            if args.only and name != args.only:
                continue
            model_dir = MODELS / folder_name
            if not (model_dir / "model.bin").is_file():
                raise SystemExit(f"{model_dir} is missing: run .ci/install-test-models")
            best = min((run_setting(model_dir, knobs, corpus_file) for _ in range(args.reps)), key=lambda r: r["wall_s"])
            audio = sum(n["seconds"] for n in best["notes"])
            errors = [word_errors(n["said"], n["heard"]) for n in best["notes"]]
            wer = sum(e for e, _ in errors) / max(1, sum(n for _, n in errors))
            row = [name, label(knobs), f"{audio / best['wall_s']:.1f}", f"{best['wall_s'] / len(best['notes']):.2f}",
                   f"{best['load_s']:.1f}", f"{wer:.1%}", f"{best['peak_rss_mb']:.0f}"]
            rows.append(row)
            print(" | ".join(row), flush=True)
    header = ["model", "setting", "audio min per wall min", "s per note", "load s", "word errors", "peak RSS MB"]
    total = sum(1 for _ in corpus)
    lines = [
        "# Transcription speed: minutes of audio heard per minute, per model and setting",
        "",
        f"Written by `python -m bench.transcribe --notes {args.notes} --reps {args.reps}` on "
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores ({_cpu()}; load average "
        f"{os.getloadavg()[0]:.1f} at the end: the machine was shared), int8. {total} spoken notes "
        f"({sum(len(words(n['said'])) for n in corpus)} words) of espeak-ng English with pauses; "
        "the fastest of the repetitions. Run it again rather than edit this file.",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(["---", "---"] + ["---:"] * (len(header) - 2)) + " |",
        *["| " + " | ".join(row) + " |" for row in rows],
        "",
    ]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"


if __name__ == "__main__":
    main()
