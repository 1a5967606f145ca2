"""Generated lectures: slides rendered with Pillow, narrated with Festival, muxed into an MP4.

Each slide has a title and bullets on one topic; its narration talks about the same topic in
words that are not on the slide, so a query built from slide words can only be answered by OCR and
one built from narration words only by speech. The ground truth (slide times, slide text,
narration text and Festival's own word timings) comes back with the file.

Festival with an HTS voice (Debian: festival, festvox-us-slt-hts) is used because pocketsphinx
transcribes it nearly word for word; espeak-ng's voice gives it nonsense.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

DEFAULT_VOICE = "cmu_us_slt_arctic_hts"
_FORMAT_VERSION = 1  # bump when rendering or timing changes, so caches regenerate


@dataclass(frozen=True, slots=True)
class Topic:
    title: str
    bullets: tuple[str, ...]
    narration: str  # says what the slide is about without the slide's words
    text_query: str  # answered by the slide's text only
    speech_query: str  # answered by the narration only


class LectureSynthError(RuntimeError):
    """A lecture could not be generated (Festival missing, bad parameters); says what to install or fix."""


@dataclass(frozen=True, slots=True)
class SpokenWord:
    text: str
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class LectureSlide:
    index: int
    start_s: float
    end_s: float
    title: str
    bullets: tuple[str, ...]
    narration: str
    narration_start_s: float
    narration_end_s: float
    words: tuple[SpokenWord, ...]  # Festival's word timings, in video time
    text_query: str
    speech_query: str

    @property
    def slide_text(self) -> str:
        return "\n".join([self.title, *self.bullets])


@dataclass(frozen=True, slots=True)
class Lecture:
    path: Path
    duration_s: float
    width: int
    height: int
    fps: float
    has_audio: bool
    slides: tuple[LectureSlide, ...]

    def slide_at(self, t_s: float) -> LectureSlide | None:
        for slide in self.slides:
            if slide.start_s <= t_s < slide.end_s:
                return slide
        return None

    def slide_over(self, start_s: float, end_s: float) -> LectureSlide | None:
        """The slide a time range overlaps most (a search result's "right slide"), None if none."""
        overlap, slide = max(
            ((min(end_s, s.end_s) - max(start_s, s.start_s), s) for s in self.slides),
            key=lambda pair: (pair[0], pair[1].index),  # ties: the later slide
        )
        return slide if overlap > 0 else None

    def to_json(self) -> str:
        data = asdict(self)
        data["path"] = str(self.path)
        return json.dumps(data, indent=1)

    @staticmethod
    def from_json(text: str) -> Lecture:
        data = json.loads(text)
        slides = tuple(
            LectureSlide(
                **{**s, "bullets": tuple(s["bullets"]), "words": tuple(SpokenWord(**w) for w in s["words"])}
            )
            for s in data.pop("slides")
        )
        return Lecture(**{**data, "path": Path(data["path"]), "slides": slides})


def generate_lecture(
    path: str | Path,
    n_slides: int = 12,
    *,
    seed: int = 0,
    width: int = 960,
    height: int = 540,
    fps: float = 4.0,
    min_slide_s: float = 20.0,
    max_slide_s: float = 40.0,
    narrate: bool = True,
    blank_slides: Sequence[int] = (),
    topics: Sequence[Topic] | None = None,
    voice: str = DEFAULT_VOICE,
) -> Lecture:
    """Write an MP4 (H.264 + AAC) of n_slides slides, each min_slide_s..max_slide_s long (longer
    when its narration needs it), narration starting 1.5 s into each slide.

    narrate=False writes no audio track; blank_slides are rendered without any text; topics
    replaces the built-in topic bank (e.g. non-English narration).
    """
    bank = list(topics) if topics is not None else list(TOPICS)
    if not 1 <= n_slides <= len(bank):
        raise LectureSynthError(f"n_slides must be in [1, {len(bank)}] (topics available), got {n_slides}")
    if width % 2 or height % 2 or width < 320 or height < 180:
        raise LectureSynthError(f"width and height must be even and at least 320x180, got {width}x{height}")
    rng = random.Random(seed)
    chosen = rng.sample(bank, n_slides) if topics is None else bank[:n_slides]
    speech = synthesize([t.narration for t in chosen], voice) if narrate else None
    rate = speech[0].rate if speech else 0
    slides, t = [], 0.0
    for i, topic in enumerate(chosen):
        spoken = speech[i] if speech else None
        narration_s = spoken.duration_s if spoken else 0.0
        length = max(rng.uniform(min_slide_s, max_slide_s), narration_s + 3.0)
        words = (
            tuple(
                SpokenWord(w.text, round(t + 1.5 + w.start_s, 3), round(t + 1.5 + w.end_s, 3))
                for w in spoken.words
            )
            if spoken
            else ()
        )
        slides.append(
            LectureSlide(
                index=i,
                start_s=round(t, 3),
                end_s=round(t + length, 3),
                title=topic.title,
                bullets=topic.bullets,
                narration=topic.narration if narrate else "",
                narration_start_s=round(t + 1.5, 3),
                narration_end_s=round(t + 1.5 + narration_s, 3),
                words=words,
                text_query=topic.text_query,
                speech_query=topic.speech_query,
            )
        )
        t += length
    duration = slides[-1].end_s
    audio = _narration_track(slides, speech, rate, duration) if speech else None
    images = [render_slide(s, width, height, i in set(blank_slides), n_slides) for i, s in enumerate(slides)]
    _write_mp4(Path(path), slides, images, fps, audio, rate)
    return Lecture(Path(path), duration, width, height, fps, audio is not None, tuple(slides))


def cached_lecture(cache_dir: str | Path, n_slides: int = 12, **params: Any) -> Lecture:
    """generate_lecture, reusing a file made earlier with the same parameters."""
    key_data = json.dumps(
        {"n": n_slides, "v": _FORMAT_VERSION, **{k: str(v) for k, v in sorted(params.items())}}
    )
    key = hashlib.sha256(key_data.encode()).hexdigest()[:16]
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    video, truth = folder / f"lecture_{key}.mp4", folder / f"lecture_{key}.json"
    if video.exists() and truth.exists():
        return Lecture.from_json(truth.read_text())
    tmp = folder / f".lecture_{key}.tmp.mp4"
    lecture = generate_lecture(tmp, n_slides, **params)
    tmp.replace(video)
    lecture = replace(lecture, path=video)
    truth.write_text(lecture.to_json())
    return lecture


# ---- speech ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Speech:
    samples: np.ndarray  # [N] float32 mono
    rate: int
    words: tuple[SpokenWord, ...]  # relative to the first sample

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.rate


def festival_available(voice: str = DEFAULT_VOICE) -> bool:
    """Festival is installed and the voice loads."""
    if shutil.which("festival") is None:
        return False
    probe = subprocess.run(
        ["festival", "-b", f"(voice_{voice})"], capture_output=True, text=True, errors="replace", timeout=60
    )
    return probe.returncode == 0 and "not defined" not in probe.stderr + probe.stdout


def synthesize(texts: Sequence[str], voice: str = DEFAULT_VOICE) -> list[Speech]:
    """Speak each text with Festival in one process; returns audio and Festival's word timings."""
    if shutil.which("festival") is None:
        raise LectureSynthError(
            "festival is not installed (Debian: apt-get install festival festvox-us-slt-hts)"
        )
    with tempfile.TemporaryDirectory(prefix="vidsight-festival-") as tmp:
        script = [f"(voice_{voice})"]
        for i, text in enumerate(texts):
            wav = Path(tmp) / f"{i}.wav"
            script.append(
                f'(set! utt (utt.synth (Utterance Text "{_scheme_string(text)}")))'
                f'(utt.save.wave utt "{wav}" \'riff)'
                f'(mapcar (lambda (w) (format t "W {i} %s %f %f\\n" (item.name w) '
                f'(item.feat w "word_start") (item.feat w "word_end"))) (utt.relation.items utt \'Word))'
            )
        (Path(tmp) / "run.scm").write_text("\n".join(script))
        done = subprocess.run(
            ["festival", "-b", str(Path(tmp) / "run.scm")],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=600,
        )
        if done.returncode != 0 or "not defined" in done.stderr:
            raise LectureSynthError(
                f"festival failed for voice {voice!r} (Debian: festvox-us-slt-hts installed?): "
                f"{done.stderr.strip()[-400:]}"
            )
        words: dict[int, list[SpokenWord]] = {i: [] for i in range(len(texts))}
        for line in done.stdout.splitlines():
            parts = line.split()
            if len(parts) == 5 and parts[0] == "W":
                words[int(parts[1])].append(SpokenWord(parts[2], float(parts[3]), float(parts[4])))
        return [Speech(*_read_wav(Path(tmp) / f"{i}.wav"), tuple(words[i])) for i in range(len(texts))]


def _scheme_string(text: str) -> str:
    return text.replace("\\", " ").replace('"', "'")


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        if w.getsampwidth() != 2:
            raise LectureSynthError(
                f"festival wrote {8 * w.getsampwidth()}-bit audio to {path}; expected 16-bit"
            )
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16).reshape(-1, w.getnchannels())
        return (pcm.mean(axis=1) / 32768.0).astype(np.float32), w.getframerate()


def _narration_track(
    slides: list[LectureSlide], speech: list[Speech], rate: int, duration_s: float
) -> np.ndarray:
    track = np.zeros(int(np.ceil(duration_s * rate)), np.float32)
    for slide, spoken in zip(slides, speech, strict=True):
        at = round(slide.narration_start_s * rate)
        piece = spoken.samples[: max(0, track.size - at)]
        track[at : at + piece.size] = piece
    return track


# ---- pictures -------------------------------------------------------------------------------


def render_slide(
    slide: LectureSlide, width: int, height: int, blank: bool = False, total: int = 0
) -> np.ndarray:
    """[H, W, 3] uint8: a title bar and bullets on a pastel background (blank: a picture, no text)."""
    from PIL import Image, ImageDraw

    hue = (slide.index * 0.161) % 1.0
    bg = tuple(int(225 + 25 * np.cos(2 * np.pi * (hue + k / 3))) for k in range(3))
    image = Image.new("RGB", (width, height), bg)  # type: ignore[arg-type]
    draw = ImageDraw.Draw(image)
    scale = height / 540
    if blank:
        for k in range(3):
            x, y, r = width * (0.25 + 0.25 * k), height * 0.5, 60 * scale * (1 + k % 2)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(40 + 70 * k, 90, 160 - 40 * k))
        return np.asarray(image)
    bar = int(110 * scale)
    draw.rectangle((0, 0, width, bar), fill=(30, 45, 90))
    draw.text(
        (int(40 * scale), int(28 * scale)),
        slide.title,
        font=_font(int(46 * scale), bold=True),
        fill=(255, 255, 255),
    )
    body = _font(int(30 * scale))
    y = bar + int(50 * scale)
    for bullet in slide.bullets:
        draw.ellipse(
            (int(48 * scale), y + int(12 * scale), int(60 * scale), y + int(24 * scale)), fill=(30, 45, 90)
        )
        draw.text((int(80 * scale), y), bullet, font=body, fill=(20, 20, 20))
        y += int(70 * scale)
    if total:
        draw.text(
            (width - int(110 * scale), height - int(45 * scale)),
            f"{slide.index + 1} / {total}",
            font=_font(int(22 * scale)),
            fill=(90, 90, 90),
        )
    return np.asarray(image)


def _font(size: int, bold: bool = False) -> Any:
    from PIL import ImageFont

    for name in (
        ("DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf")
        if bold
        else ("DejaVuSans.ttf", "LiberationSans-Regular.ttf")
    ):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size)


# ---- muxing ---------------------------------------------------------------------------------


def _write_mp4(
    path: Path,
    slides: list[LectureSlide],
    images: list[np.ndarray],
    fps: float,
    audio: np.ndarray | None,
    rate: int,
) -> None:
    """H.264 slides (one frame every 1/fps s) and AAC narration, interleaved by time."""
    height, width = images[0].shape[:2]
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"crf": "23", "preset": "veryfast", "g": str(int(fps * 10))}
        sound = None
        if audio is not None:
            sound = container.add_stream("aac", rate=rate)
            sound.layout = "mono"
        n_frames = int(np.ceil(slides[-1].end_s * fps))
        audio_frame, audio_pos = 1024, 0
        for i in range(n_frames):
            t = i / fps
            while (
                sound is not None and audio is not None and audio_pos < audio.size and audio_pos / rate <= t
            ):
                _mux_audio(container, sound, audio[audio_pos : audio_pos + audio_frame], audio_pos, rate)
                audio_pos += audio_frame
            index = next(k for k, s in enumerate(slides) if t < s.end_s or k == len(slides) - 1)
            frame = av.VideoFrame.from_ndarray(images[index], format="rgb24")
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None and audio is not None:
            for pos in range(audio_pos, audio.size, audio_frame):
                _mux_audio(container, sound, audio[pos : pos + audio_frame], pos, rate)
            container.mux(sound.encode(None))


def _mux_audio(container: Any, stream: Any, block: np.ndarray, pos: int, rate: int) -> None:
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block[None, :]), format="flt", layout="mono")
    frame.sample_rate, frame.pts, frame.time_base = rate, pos, Fraction(1, rate)
    container.mux(stream.encode(frame))


# ---- the topic bank -------------------------------------------------------------------------
# Kept apart on purpose: no content word of a speech query is on its slide, no content word of a
# text query is in its narration, and each query ranks its own topic first by keywords (tested).
# Format: "# title", "- bullet", "> narration line", "text: query", "speech: query".

_TOPIC_TABLE = """
# Photosynthesis
- Chlorophyll absorbs red and blue light
- Calvin cycle fixes CO2 into glucose
- 6CO2 + 6H2O -> C6H12O6 + 6O2
> Let us talk about how green plants make their own food. Leaves catch the energy of the sun and store
> it as sugar. Water comes up from the roots, and the air gives the rest. As a bonus, the forest
> breathes out the oxygen we need.
text: Calvin cycle chlorophyll glucose
speech: how green plants make their own food from the sun
# Ocean Tides
- Lunar gravity creates two bulges
- Spring tides at syzygy
- Neap tides at quadrature
> Twice a day the sea rises and falls along the coast. The moon pulls on the water, and the earth
> turns underneath. When the sun and the moon line up, the water climbs higher than usual. Sailors
> have used printed tables for centuries to plan when to leave the harbor.
text: spring tides syzygy neap quadrature
speech: why the sea rises and falls twice a day
# Plate Tectonics
- Lithosphere split into rigid plates
- Subduction zones form trenches
- Mid-ocean ridges create new crust
> The ground under our feet is slowly moving, a few inches every year. Huge pieces of rock drift apart
> in some places and crash together in others. That is why mountains grow and why some cities feel
> strong earthquakes.
text: subduction zones lithosphere trenches
speech: why mountains grow and cities feel earthquakes
# Supply and Demand
- Equilibrium price clears the market
- Demand curve slopes downward
- Elasticity measures responsiveness
> When something becomes scarce, people are willing to pay more for it. When stores have too much of a
> product, they charge less to sell it. Buyers and sellers keep pushing until they meet in the middle.
text: equilibrium price elasticity demand curve
speech: stores charge less when they have too much to sell
# The French Revolution
- Storming of the Bastille, 1789
- Declaration of the Rights of Man
- Reign of Terror under Robespierre
> In the late eighteenth century, the people of Paris rose up against their king. Bread was expensive,
> taxes were unfair, and the old nobles kept their privileges. Within a few years the monarchy was
> gone.
text: Bastille Robespierre Reign of Terror
speech: people of Paris rose up against their king
# Neural Networks
- Backpropagation computes gradients
- ReLU activation: max(0, x)
- Stochastic gradient descent updates weights
> Computers can learn to recognize faces and voices by looking at many examples. Each small unit adds
> up its inputs and passes a signal forward. After every mistake, the machine adjusts itself a little,
> and slowly it gets better.
text: backpropagation ReLU stochastic gradient descent
speech: computers learn to recognize faces and voices from examples
# Black Holes
- Event horizon: no escape for light
- Schwarzschild radius r = 2GM/c^2
- Hawking radiation
> Some stars end their lives by collapsing into a point so dense that nothing comes back out. Anything
> that falls too close is stretched and swallowed. Astronomers find them by watching nearby stars race
> around an invisible partner.
text: Schwarzschild radius Hawking radiation
speech: stars collapsing so dense that nothing comes back out
# The Immune System
- Antibodies bind specific antigens
- T cells destroy infected cells
- Vaccines train adaptive immunity
> Our bodies fight off germs every single day without us noticing. White blood cells hunt down
> invaders and remember them for next time. That memory is why you usually catch the same illness only
> once.
text: antibodies antigens vaccines adaptive immunity
speech: how the body fights off germs and remembers them
# Renaissance Art
- Linear perspective (Brunelleschi)
- Sfumato in the Mona Lisa
- Patronage of the Medici family
> Around five hundred years ago, painters in Italy began to show the world as the eye really sees it.
> Rich bankers paid them to decorate churches and palaces. Their pictures of saints and rulers still
> draw huge crowds to museums today.
text: Brunelleschi sfumato Medici patronage
speech: painters in Italy paid by rich bankers to decorate churches
# Climate Change
- Greenhouse gases trap infrared radiation
- Atmospheric CO2 above 420 ppm
- Glacier retreat and ocean acidification
> The planet is getting warmer because we burn coal and oil. The extra smoke in the air acts like a
> blanket and holds the heat in. Summers are getting hotter, storms are getting stronger, and the ice
> at the poles is melting.
text: greenhouse gases infrared ppm
speech: burning coal and oil makes the planet warmer
# The Roman Empire
- Augustus becomes first emperor, 27 BC
- Pax Romana: two centuries of stability
- Aqueducts, roads and concrete
> For hundreds of years, one city ruled the lands around the Mediterranean. Its armies built long
> straight highways so soldiers and traders could travel fast. In the end it split in two, and the
> western half fell to invaders.
text: Augustus Pax Romana aqueducts
speech: one city ruled the lands around the Mediterranean
# Blockchain
- Distributed ledger of transactions
- Proof of work: SHA-256 hashing
- Smart contracts on Ethereum
> Imagine a record book that thousands of strangers keep copies of at the same time. Nobody can
> quietly change an old page, because everyone else would notice. That is the idea behind digital
> money.
text: distributed ledger SHA-256 Ethereum
speech: a record book that thousands of strangers keep copies of
# DNA Replication
- Helicase unwinds the double helix
- DNA polymerase adds nucleotides 5' to 3'
- Okazaki fragments on the lagging strand
> Before a living thing can grow, every one of its tiny building blocks must copy its instructions.
> The twisted ladder opens like a zipper, and each half serves as a pattern for a new partner.
> Mistakes are rare, but when they happen they can lead to disease.
text: helicase Okazaki fragments polymerase
speech: the twisted ladder opens like a zipper
# Thermodynamics
- First law: energy is conserved
- Second law: entropy never decreases
- Carnot efficiency = 1 - Tc/Th
> A hot cup of coffee always cools down on the table; it never warms up by itself. You can turn heat
> into motion, but some of it is always lost along the way. That is why no engine can ever be perfect.
text: entropy Carnot efficiency
speech: hot coffee cools down and no engine can be perfect
# The Printing Press
- Gutenberg's movable type, c. 1450
- Mass production of books
- Spread of the Reformation
> Before this invention, every copy of a text had to be written out by hand, often by monks. Suddenly
> a workshop could make hundreds of copies in a week. Ideas traveled faster than ever, and more
> ordinary people learned to read.
text: Gutenberg movable type Reformation
speech: every copy written out by hand by monks
# Volcanoes
- Magma chambers beneath the crust
- Pyroclastic flows and lahars
- Shield vs stratovolcano
> Deep underground, rock gets so hot that it melts and rises toward the surface. When the pressure
> builds up, the whole hill can explode and bury nearby villages in ash. The soil afterwards is very
> rich, so farmers often move back.
text: pyroclastic flows lahars stratovolcano
speech: rock so hot it melts and buries villages in ash
# Operating Systems
- Process scheduling and time slicing
- Virtual memory with page tables
- System calls: fork, exec, mmap
> Your computer seems to run dozens of programs at once, but it is really switching between them very
> quickly. It also pretends each one has the whole machine to itself. The software in charge decides
> who goes next and keeps them from fighting.
text: virtual memory page tables fork exec mmap
speech: switching between dozens of programs very quickly
# Shakespeare
- Globe Theatre, London
- Iambic pentameter
- Hamlet, Macbeth, Othello
> The most famous writer in the English language lived more than four hundred years ago. His plays
> about jealous husbands, ambitious generals and young lovers are still performed every night
> somewhere in the world.
text: iambic pentameter Globe Theatre
speech: famous writer whose plays about jealous husbands and young lovers
# Antibiotics
- Penicillin discovered by Fleming, 1928
- Beta-lactams block cell wall synthesis
- Resistance via horizontal gene transfer
> A mold growing on a forgotten dish turned out to kill dangerous bacteria. Drugs made from it have
> saved millions of lives. But when we use them too often, the bugs adapt and the medicine stops
> working.
text: penicillin Fleming beta-lactams
speech: mold on a forgotten dish killed dangerous bacteria
# Impressionism
- Monet, Renoir, Degas
- Painting en plein air
- Broken color and visible brushstrokes
> A group of young artists in France left their studios and set up their easels outside. They tried to
> catch the fleeting effect of sunshine on water and fields. Critics laughed at first, calling the
> pictures unfinished sketches.
text: Monet Renoir Degas plein air
speech: young artists set up their easels outside
# Quantum Mechanics
- Wave-particle duality
- Heisenberg uncertainty principle
- Schrödinger equation
> At the smallest scales, nature behaves in ways that defy common sense. A single electron can seem to
> be in two places at once until someone looks. Even the greatest physicists admitted they found it
> strange.
text: Heisenberg uncertainty Schrödinger equation
speech: an electron in two places at once until someone looks
# The Cold War
- NATO vs Warsaw Pact
- Cuban Missile Crisis, 1962
- Fall of the Berlin Wall, 1989
> For more than forty years, two superpowers faced each other without ever fighting directly. Both
> sides built enough bombs to destroy the world many times over. It ended peacefully when crowds tore
> down the barrier dividing a famous city.
text: Cuban Missile Crisis Warsaw Pact
speech: two superpowers built enough bombs to destroy the world
# Compilers
- Lexing and parsing into an AST
- Register allocation by graph coloring
- LLVM intermediate representation
> Programmers write instructions in a language that people can read. Another tool translates those
> words into the simple steps a processor understands. A good translator also makes the result run
> faster.
text: register allocation graph coloring LLVM
speech: translates instructions people can read into steps a processor understands
# Coral Reefs
- Zooxanthellae live inside coral polyps
- Bleaching above 30 °C
- Great Barrier Reef: 2,300 km
> Under warm shallow water live colorful gardens built by tiny animals. Thousands of kinds of fish
> find food and shelter there. When the water gets too warm, these places turn white and may die.
text: zooxanthellae polyps bleaching Great Barrier Reef
speech: colorful gardens built by tiny animals under warm water
"""


def parse_topics(table: str) -> tuple[Topic, ...]:
    """Topics from the text format above (also how tests and demos write their own)."""
    topics: list[Topic] = []
    fields: dict[str, Any] = {}

    def close() -> None:
        if fields:
            topics.append(
                Topic(
                    fields["title"],
                    tuple(fields["bullets"]),
                    " ".join(fields["narration"]),
                    fields["text"],
                    fields["speech"],
                )
            )

    for raw in table.strip().splitlines():
        line = raw.strip()
        if line.startswith("# "):
            close()
            fields = {"title": line[2:], "bullets": [], "narration": [], "text": "", "speech": ""}
        elif line.startswith("- "):
            fields["bullets"].append(line[2:])
        elif line.startswith("> "):
            fields["narration"].append(line[2:])
        elif line.startswith(("text: ", "speech: ")):
            key, value = line.split(": ", 1)
            fields[key] = value
    close()
    return tuple(topics)


TOPICS = parse_topics(_TOPIC_TABLE)
