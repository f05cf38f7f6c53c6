"""The Android demo's pure-Java core (android_demo/core), compiled with javac and run under JUnit.

The Python side writes golden files at test time: token ids from the `tokenizers` library with
each tokenizer.json (the bundle's reference), packed inputs from edge_albert.tokenizer, softmax
scores and labels from edge_albert's TextClassifier, and an `export-android` output. The JUnit
class GoldenParityTest compares the Java core to all of them exactly and prints one
"PARITY <tokenizer> <set> <same>/<total>" line per text set; this test requires every line it
expects, with every text identical, so a golden file that silently shrank cannot pass.

Tokenizers: the real albert-base-v2 spiece.model (data/), the example model's tokenizer
(examples/sst2-albert once committed; until then one trained here with the same recipe,
edge_albert.finetune), and variants of albert-base-v2's tokenizer.json that exercise the other
pipeline steps the exporter accepts (keep_accents, cased, the transformers-4 layout, byte fallback).
Texts: all of SST-2 dev, the adversarial set (texts and both sides of its pairs), and a
seeded fuzz set of mixed scripts, marks, emoji, controls and special-token strings.

Needs javac/java (JDK 11+) and JUnit 4 + Hamcrest jars: scripts/ci_java_deps.sh installs them on
Debian. Without them this test fails and says so; it never skips.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pytest

from tests.project_data import data_file

from edge_albert.android_export import build_vocab, canonical_tokenizer_json, export_android

REPO = Path(__file__).resolve().parents[1]
ADVERSARIAL = Path(__file__).resolve().parent / "data" / "tokenizer_adversarial.json"
EXAMPLE_TOKENIZER = REPO / "examples" / "sst2-albert" / "tokenizer.json"
ANDROID_DEMO = REPO / "android_demo"
CORE_MODULE = ANDROID_DEMO / "core"
JAVA_ROOT = CORE_MODULE / "src"
CORE_SOURCES = JAVA_ROOT / "main" / "java" / "dev" / "edgealbert" / "demo" / "core"
CORE_TESTS = JAVA_ROOT / "test" / "java" / "dev" / "edgealbert" / "demo" / "core"
JUNIT_CANDIDATES = ("/usr/share/java/junit4.jar", "/usr/share/java/junit.jar")
HAMCREST_CANDIDATES = ("/usr/share/java/hamcrest-core.jar", "/usr/share/java/hamcrest.jar",
                       "/usr/share/java/hamcrest-all.jar")
FUZZ_TEXTS = 1500
LABELS = ["negative", "positive"]

pytestmark = pytest.mark.slow


# --------------------------------------------------------------------------- inputs



def sst2(split: str) -> List[str]:
    with open(data_file(f"glue-sst2/{split}.tsv"), newline="", encoding="utf-8") as handle:
        return [row["sentence"] for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]


def adversarial() -> Tuple[List[str], List[Tuple[str, str]]]:
    data = json.loads(ADVERSARIAL.read_text(encoding="utf-8"))
    return [t["text"] for t in data["texts"]], [(p["text"], p["text_pair"]) for p in data["pairs"]]


# Pieces of text the fuzz set strings together: every normaliser, grapheme and pre-tokenizer path.
# Only characters assigned by Unicode 13 (JDK 17's tables), so a difference is a bug, not a version.
FUZZ_ATOMS = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    + list(".,;:!?'\"`()[]{}<>-_/\\|@#$%^&*+=~")
    + [" ", " ", " ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2009", "\u200a", "\u2028", "\u0085",
       "\u000b", "\u000c", "\u001c", "\u001f"]
    + ["\u0000", "\u0007", "\u001b", "\u007f", "\u0080", "\u009f", "\u00ad", "\u200b", "\u200c", "\u200d", "\u2060",
       "\ufeff", "\u202e", "\u200e", "\u2066", "\ufe0f", "\ufe00", "\U000e0061", "\U000e0100"]
    + ["\u0301", "\u0308", "\u0327", "\u0303", "\u030a", "\u0323", "\u20dd", "e\u0301", "A\u030a", "n\u0303",
       "\u00e9", "\u00c5", "\u00f1", "\u00df", "\u1e9e", "\u0130", "\u0131", "\u00e6", "\u00f8", "\u0142", "\u0111"]
    + ["\u03a3", "\u03c3", "\u03c2", "\u0391\u0392\u0393", "\u0386", "\u0439", "\u0419", "\u0451", "\u0416"]
    + ["\u05e9\u05c1", "\u05d0\u05b8", "\u0627\u064e", "\u0628\u0650", "\u0600\u0661", "\u06dd", "\u070f",
       "\u0645\u0631\u062d\u0628\u0627"]
    + ["\u0915\u094d\u0937", "\u0939\u093f", "\u0903", "a\u0903", "\u09be", "\u0995\u09be", "\u0e01\u0e33", "\u0e33",
       "\u0eb3", "\u0e44\u0e17\u0e22"]
    + ["\uac00", "\ud55c\uad6d", "\u1100\u1161\u11a8", "\u1100", "\u1161", "\u11a8", "\u3131", "\uffa1"]
    + ["\u3042", "\u30ab", "\u30ac", "\u304b\u3099", "\uff76", "\uff9e", "\uff76\uff9e", "\uff8a\uff9f", "\u6771\u4eac",
       "\u4e2d\u6587", "\u3002", "\uff01", "\uff21", "\uff41", "\uff10", "\u2460", "\u216b", "\u00bd", "\u00b2",
       "\u2122", "\u00a9", "\u00ae", "\u2116", "\u2103", "\ufb01", "\ufb00", "\u210c", "\u33a1", "\u3250"]
    + ["\U0001f600", "\U0001f44d\U0001f3fd", "\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467",
       "\U0001f1e9\U0001f1ea", "\U0001f1e9", "\u2764\ufe0f", "\u2764", "#\ufe0f\u20e3", "\u00a9\u200d\u00ae",
       "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", "\U0001d518", "\U0001d7d8",
       "\U00020000", "\u2603", "\u221e", "\u2248"]
    + ["[CLS]", "[SEP]", "[MASK]", "<pad>", "<unk>", "<UNK>", "[cls]", "``", "''", "'", "`", "\u2013", "\u2014",
       "\u00a3", "\u20ac", "\u201c", "\u201d", "\u2018", "\u2019", "\u2581", "\u2581\u2581", "...", "n't", "'s"]
    + ["the", "movie", "film", "good", "bad", "not", "great", "caf\u00e9", "na\u00efve", "r\u00e9sum\u00e9",
       "\u00fcber", "stra\u00dfe", "hello", "world", "pneumonoultramicroscopic", "aaaaaaaaaaaaaaaaaa"]
)


def fuzz_texts(count: int = FUZZ_TEXTS, seed: int = 20260601) -> List[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        parts = [rng.choice(FUZZ_ATOMS) for _ in range(rng.randint(1, 14))]
        texts.append("".join(part if rng.random() < 0.6 else part + " " for part in parts))
    return texts


# --------------------------------------------------------------------------- tokenizers


def hf_tokenizer_json(directory: Path, spiece: bytes) -> Path:
    """transformers 5's tokenizer.json for a spiece.model (directory with config.json, as a checkpoint has)."""
    from transformers import AutoTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "spiece.model").write_bytes(spiece)
    (directory / "config.json").write_text(json.dumps({"model_type": "albert", "architectures": ["AlbertModel"]}))
    AutoTokenizer.from_pretrained(str(directory)).save_pretrained(str(directory))
    return directory / "tokenizer.json"


def example_tokenizer_json(directory: Path) -> Tuple[str, Path]:
    """The example model's tokenizer, or one trained with its recipe until examples/sst2-albert is committed."""
    if EXAMPLE_TOKENIZER.is_file():
        return "example-sst2-albert", EXAMPLE_TOKENIZER
    from edge_albert.finetune import build_tokenizer, train_sentencepiece

    spiece = train_sentencepiece(sst2("train")[:20000], vocab_size=4000)
    build_tokenizer(spiece, directory)
    return "example-recipe-trained", directory / "tokenizer.json"


def variants(albert_json: Path, directory: Path) -> Dict[str, Path]:
    """albert-base-v2's tokenizer.json edited into the other pipelines the exporter accepts."""
    from tokenizers import Tokenizer

    base = json.loads(albert_json.read_text(encoding="utf-8"))
    steps = base["normalizer"]["normalizers"]
    out: Dict[str, dict] = {}

    keep_accents = json.loads(json.dumps(base))
    keep_accents["normalizer"]["normalizers"] = [s for s in steps if s["type"] not in ("NFKD", "StripAccents")]
    out["albert-keep-accents"] = keep_accents

    cased = json.loads(json.dumps(base))  # cased models usually keep their accents too
    cased["normalizer"]["normalizers"] = [s for s in steps if s["type"] not in ("NFKD", "StripAccents", "Lowercase")]
    out["albert-cased-keep-accents"] = cased

    # transformers 4 wrote a space-collapsing Replace and a lone Metaspace with add_prefix_space.
    legacy = json.loads(json.dumps(base))
    legacy["normalizer"]["normalizers"] = steps + [{"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]
    legacy["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "add_prefix_space": True}
    out["albert-transformers4-layout"] = legacy

    byte_fallback = json.loads(json.dumps(base))
    byte_fallback["model"]["byte_fallback"] = True
    byte_fallback["model"]["vocab"] += [[f"<0x{b:02X}>", -20.0] for b in range(256)]
    out["albert-byte-fallback"] = byte_fallback

    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, data in out.items():
        path = directory / f"{name}.json"
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        Tokenizer.from_file(str(path))  # the reference library must accept the edited file
        paths[name] = path
    return paths


# --------------------------------------------------------------------------- goldens


def write_ids_golden(tokenizer_json: Path, text_sets: Dict[str, Sequence[str]], out: Path) -> Dict[str, int]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_json))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    counts = {}
    with open(out, "w", encoding="utf-8") as handle:
        for set_name, texts in text_sets.items():
            for text, encoding in zip(texts, tokenizer.encode_batch(list(texts), add_special_tokens=False)):
                handle.write(json.dumps({"set": set_name, "text": text, "ids": encoding.ids}) + "\n")
            counts[set_name] = len(texts)
    return counts


def write_vocab(tokenizer_json: Path, out: Path) -> None:
    vocab = build_vocab(canonical_tokenizer_json(tokenizer_json), {"max_seq_len": 128, "labels": LABELS})
    out.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")


def write_packer_golden(tokenizer_json: Path, singles: Sequence[str], pairs: Sequence[Tuple[str, str]],
                        out: Path) -> int:
    """Packed inputs from edge_albert.tokenizer, the Python runtime's packer, one example at a time."""
    from edge_albert.tokenizer import AlbertTokenizer

    tokenizer = AlbertTokenizer.from_file(tokenizer_json)
    cases: List[Tuple[str, Optional[str], int, int]] = []
    cases += [(text, None, 128, 0) for text in singles]
    cases += [(text, None, 12, 0) for text in singles[:300]]  # most of these are cut
    cases += [(text, None, 24, 24) for text in singles[:100]]  # fixed-length (unrolled) padding
    for length in (16, 40, 512):
        cases += [(first, second, length, 0) for first, second in pairs]
    count = 0
    with open(out, "w", encoding="utf-8") as handle:
        for text, pair, max_length, pad_to in cases:
            encoded = tokenizer.encode([text], None if pair is None else [pair], max_length=max_length)
            n = int(encoded.lengths()[0]) if encoded.num_rows else 0
            ids = encoded.input_ids[0, :n].tolist()
            mask = encoded.attention_mask[0, :n].tolist()
            types = encoded.token_type_ids[0, :n].tolist()
            if pad_to:  # the runtime pads fixed-shape models with the pad id (ModelSession)
                ids += [tokenizer.pad_id] * (pad_to - n)
                mask += [0] * (pad_to - n)
                types += [tokenizer.pad_type_id] * (pad_to - n)
            handle.write(json.dumps({"text": text, "text_pair": pair, "max_length": max_length, "pad_to": pad_to,
                                     "input_ids": ids, "attention_mask": mask, "token_type_ids": types,
                                     "truncated": bool(encoded.truncated[0])}) + "\n")
            count += 1
    return count


def write_classification_golden(bundle: Path, texts: Sequence[str], out: Path) -> int:
    from edge_albert.tasks import TextClassifier

    classifier = TextClassifier.load(bundle, num_threads=1)
    logits = classifier.logits(list(texts))
    predictions = classifier.predict(list(texts))
    rows = [{"logits": [float(x) for x in row], "label": prediction.label, "scores": prediction.scores}
            for row, prediction in zip(np.asarray(logits, dtype=np.float32), predictions)]
    # Extreme logits: softmax must not overflow and ties must keep the label order.
    labels = classifier.labels
    for first, rest in ((1000.0, -1000.0), (-88.5, 88.5), (3.25, 3.25), (0.0, 1e-7)):
        extreme = [first] + [rest] * (len(labels) - 1)
        scores = np.exp(np.asarray(extreme) - max(extreme))
        scores = scores / scores.sum()
        rows.append({"logits": extreme, "label": labels[int(np.argmax(scores))],
                     "scores": dict(zip(labels, scores.tolist()))})
    out.write_text(json.dumps({"labels": classifier.labels, "rows": rows}), encoding="utf-8")
    return len(rows)


def example_bundle(root: Path) -> Optional[Path]:
    """The example model converted as a user would (dynamic int8, loop), once it is committed."""
    checkpoint = EXAMPLE_TOKENIZER.parent
    if not (checkpoint / "config.json").is_file():
        return None
    from edge_albert.converters.convert import convert_checkpoint

    result = convert_checkpoint(checkpoint, root / "sst2-albert.edgealbert", quantize="dynamic-int8", graph="loop",
                                max_seq_len=128)
    assert result.bundle is not None, "the converter bundled nothing for the example model"
    return result.bundle.path


# --------------------------------------------------------------------------- JVM


def java_toolchain() -> Tuple[str, str, str]:
    """(javac, java, classpath of JUnit 4 + Hamcrest); fail, never skip, when one is missing."""
    javac, java = shutil.which("javac"), shutil.which("java")
    override = os.environ.get("EDGE_ALBERT_JUNIT_CLASSPATH")
    junit = next((p for p in JUNIT_CANDIDATES if Path(p).is_file()), None)
    hamcrest = next((p for p in HAMCREST_CANDIDATES if Path(p).is_file()), None)
    classpath = override or (f"{junit}{os.pathsep}{hamcrest}" if junit and hamcrest else None)
    missing = [what for what, found in (("javac", javac), ("java", java), ("JUnit 4 + Hamcrest jars", classpath))
               if not found]
    if missing:
        pytest.fail(f"the Java core tests need {', '.join(missing)}: run scripts/ci_java_deps.sh (Debian: "
                    f"default-jdk-headless, junit4), or set EDGE_ALBERT_JUNIT_CLASSPATH to the JUnit 4 and Hamcrest "
                    f"jars")
    return javac, java, classpath


def compile_and_run(toolchain: Tuple[str, str, str], classes: Path, golden: Path) -> str:
    javac, java, classpath = toolchain
    sources = sorted(str(p) for p in list(CORE_SOURCES.glob("*.java")) + list(CORE_TESTS.glob("*.java")))
    assert len(sources) >= 10, f"expected the Java core and its tests under {JAVA_ROOT}, found {sources}"
    compiled = subprocess.run([javac, "-encoding", "UTF-8", "-Xlint:all", "-Xlint:-options", "-Werror", "--release", "8",
                               "-cp", classpath, "-d", str(classes), *sources],
                              capture_output=True, text=True)
    assert compiled.returncode == 0, f"javac failed:\n{compiled.stdout}\n{compiled.stderr}"
    run = subprocess.run([java, "-Xmx1g", f"-Dedgealbert.golden={golden}", "-Dfile.encoding=UTF-8",
                          "-cp", f"{classes}{os.pathsep}{classpath}", "org.junit.runner.JUnitCore",
                          "dev.edgealbert.demo.core.CoreUnitTest", "dev.edgealbert.demo.core.GoldenParityTest"],
                         capture_output=True, text=True, encoding="utf-8", errors="replace")
    output = run.stdout + run.stderr
    assert run.returncode == 0, f"JUnit failed:\n{output[-20000:]}"
    return output


def test_core_has_no_android_imports():
    """The core must compile on a plain JVM: no android.*, androidx.* or org.json imports.

    A cheap early check; the real guard is Gradle: core/ is a java-library module with no Android
    classes on its compile classpath (test_core_is_a_plain_java_library_module).
    """
    sources = list(CORE_SOURCES.glob("*.java")) + list(CORE_TESTS.glob("*.java"))
    assert len(sources) >= 10, f"expected the Java core and its tests under {JAVA_ROOT}, found {sources}"
    offending = [f"{path.name}: {line.strip()}" for path in sources
                 for line in path.read_text(encoding="utf-8").splitlines()
                 if re.match(r"\s*import\s+(static\s+)?(android|androidx|org\.json)\.", line)]
    assert not offending, offending


def test_core_is_a_plain_java_library_module():
    """The Gradle wiring that makes the compiler keep Android out of the core (no Gradle here to run it)."""
    settings = (ANDROID_DEMO / "settings.gradle").read_text(encoding="utf-8")
    core_build = (CORE_MODULE / "build.gradle").read_text(encoding="utf-8")
    app_build = (ANDROID_DEMO / "app" / "build.gradle").read_text(encoding="utf-8")
    assert re.search(r"^include\b.*':core'", settings, flags=re.MULTILINE), settings
    assert re.search(r"id\s+'java-library'", core_build), core_build
    assert "com.android" not in core_build, "the core module must not apply an Android plugin"
    assert re.search(r"options\.release\.set\(8\)", core_build), "the core targets Java 8, as javac --release 8 here"
    assert re.search(r"testImplementation\s+'junit:junit:4\.", core_build), core_build
    assert re.search(r"implementation\s+project\(':core'\)", app_build), app_build
    app_java = ANDROID_DEMO / "app" / "src" / "main" / "java" / "dev" / "edgealbert" / "demo"
    assert not (app_java / "core").exists(), "core sources belong in android_demo/core, not in the app module"


def test_java_core_equals_python_side(tmp_path, tmp_path_factory):
    from tests.runtime_bundles import bundle_for

    toolchain = java_toolchain()  # before the slow golden files: a missing JDK fails at once
    golden = tmp_path / "golden"
    golden.mkdir()
    albert_json = hf_tokenizer_json(tmp_path / "albert-base-v2", data_file("albert-base-v2/spiece.model").read_bytes())
    example_name, example_json = example_tokenizer_json(tmp_path / "example")
    tokenizer_files = {"albert-base-v2": albert_json, example_name: example_json,
                       **variants(albert_json, tmp_path / "variants")}

    texts, pairs = adversarial()
    text_sets = {
        "sst2-dev": sst2("dev"),
        "adversarial": texts,
        "adversarial-pair-sides": [side for pair in pairs for side in pair],
        "fuzz": fuzz_texts(),
    }
    assert len(text_sets["sst2-dev"]) == 872 and len(texts) >= 40
    expected: Dict[Tuple[str, str], int] = {}
    cases = {"tokenizers": [], "packer": [], "assets": []}
    for name, path in tokenizer_files.items():
        write_vocab(path, golden / f"{name}.vocab.json")
        for set_name, count in write_ids_golden(path, text_sets, golden / f"{name}.ids.jsonl").items():
            expected[(name, set_name)] = count
        cases["tokenizers"].append({"name": name, "vocab": f"{name}.vocab.json", "ids": f"{name}.ids.jsonl"})
    for name in ("albert-base-v2", example_name):
        count = write_packer_golden(tokenizer_files[name], text_sets["sst2-dev"] + texts, pairs,
                                    golden / f"{name}.packer.jsonl")
        expected[(name, "packer")] = count
        cases["packer"].append({"name": name, "vocab": f"{name}.vocab.json", "file": f"{name}.packer.jsonl"})

    bundle_root = tmp_path_factory.mktemp("android-java-bundles")
    loop_bundle = example_bundle(bundle_root) or bundle_for(bundle_root, "text-classification", "dynamic-int8", "loop")
    unrolled_bundle = bundle_for(bundle_root, "text-classification", "fp32", "unrolled")
    rows = write_classification_golden(loop_bundle, text_sets["sst2-dev"][:200] + texts, golden / "classification.json")
    expected[("classifier", "softmax")] = rows
    cases["classification"] = "classification.json"
    for name, bundle in (("assets-loop", loop_bundle), ("assets-unrolled", unrolled_bundle)):
        export = export_android(bundle, golden / name)
        examples = json.loads((export.assets_dir / "examples.json").read_text(encoding="utf-8"))["examples"]
        expected[("assets", name)] = len(examples)
        cases["assets"].append(name)
    (golden / "cases.json").write_text(json.dumps(cases), encoding="utf-8")

    output = compile_and_run(toolchain, tmp_path / "classes", golden)
    # JUnit's progress dots may precede a line.
    found = {(m[1], m[2]): (int(m[3]), int(m[4]))
             for m in re.finditer(r"^[.E]*PARITY (\S+) (\S+) (\d+)/(\d+)$", output, flags=re.MULTILINE)}
    print("\n".join(f"{name} {set_name}: {same}/{total}" for (name, set_name), (same, total) in sorted(found.items())))
    missing = sorted(set(expected) - set(found))
    assert not missing, f"JUnit reported no result for {missing}:\n{output[-5000:]}"
    for key, count in expected.items():
        assert found[key] == (count, count), f"{key}: {found[key][0]}/{found[key][1]} identical, expected {count}"
