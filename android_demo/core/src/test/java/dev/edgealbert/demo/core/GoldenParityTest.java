package dev.edgealbert.demo.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.Assume;
import org.junit.Test;

/**
 * The Java core against golden files the Python side writes at test time
 * (tests/test_android_java.py passes their folder as -Dedgealbert.golden).
 *
 * <p>Token ids come from the `tokenizers` library with the bundle's tokenizer.json; packed inputs
 * from edge_albert.tokenizer; probabilities and labels from edge_albert's TextClassifier; the
 * assets check runs ClassifierSpec on an `edge-albert export-android` output. Every comparison is
 * exact except probabilities (1e-9). On a mismatch the failure shows the first differing text with
 * both id lists. Each test prints "PARITY name set same/total" lines that the pytest side counts.
 * Without the property (a Gradle run in Android Studio) the tests are skipped: the golden files
 * exist only inside the pytest run.
 */
public class GoldenParityTest {
    private static Path goldenDir() {
        String dir = System.getProperty("edgealbert.golden");
        Assume.assumeTrue("golden files are written by tests/test_android_java.py", dir != null);
        return Paths.get(dir);
    }

    private static Map<String, Object> cases() throws IOException {
        return Json.asObject(Json.parse(read(goldenDir().resolve("cases.json"))), "cases.json");
    }

    @Test
    public void tokenIdsEqualTheTokenizersLibrary() throws IOException {
        Path dir = goldenDir();
        List<String> failures = new ArrayList<>();
        for (Object entry : Json.asArray(cases().get("tokenizers"), "tokenizers")) {
            Map<String, Object> tokenizerCase = Json.asObject(entry, "tokenizer case");
            String name = (String) tokenizerCase.get("name");
            Map<String, Object> vocab = ClassifierSpec.readVocab(read(dir.resolve((String) tokenizerCase.get("vocab"))));
            SentencePieceTokenizer tokenizer = SentencePieceTokenizer.fromJson(Json.asObject(vocab.get("tokenizer"),
                    "tokenizer"));
            Map<String, int[]> counts = new LinkedHashMap<>(); // set -> {same, total}
            String firstMismatch = null;
            for (String line : Files.readAllLines(dir.resolve((String) tokenizerCase.get("ids")),
                    StandardCharsets.UTF_8)) {
                if (line.isEmpty()) {
                    continue;
                }
                Map<String, Object> golden = Json.asObject(Json.parse(line), "golden line");
                String text = (String) golden.get("text");
                int[] expected = ints(golden.get("ids"));
                int[] actual = tokenizer.encode(text);
                int[] count = counts.computeIfAbsent((String) golden.get("set"), k -> new int[2]);
                count[1]++;
                if (Arrays.equals(expected, actual)) {
                    count[0]++;
                } else if (firstMismatch == null) {
                    firstMismatch = String.format(Locale.ROOT,
                            "%s, set %s, text %s%n  expected (tokenizers) %s%n  actual (Java)         %s%n"
                                    + "  Java normalised words %s",
                            name, golden.get("set"), escape(text), Arrays.toString(expected),
                            Arrays.toString(actual), escapeAll(tokenizer.words(text)));
                }
            }
            for (Map.Entry<String, int[]> count : counts.entrySet()) {
                System.out.printf(Locale.ROOT, "PARITY %s %s %d/%d%n", name, count.getKey(), count.getValue()[0],
                        count.getValue()[1]);
            }
            if (firstMismatch != null) {
                failures.add(firstMismatch);
            }
        }
        if (!failures.isEmpty()) {
            fail("token ids differ from the tokenizers library; first mismatch per tokenizer:\n"
                    + String.join("\n", failures));
        }
    }

    @Test
    public void packedInputsEqualThePythonRuntime() throws IOException {
        Path dir = goldenDir();
        for (Object entry : Json.asArray(cases().get("packer"), "packer")) {
            Map<String, Object> packerCase = Json.asObject(entry, "packer case");
            String name = (String) packerCase.get("name");
            Map<String, Object> vocab = ClassifierSpec.readVocab(read(dir.resolve((String) packerCase.get("vocab"))));
            SentencePieceTokenizer tokenizer = SentencePieceTokenizer.fromJson(Json.asObject(vocab.get("tokenizer"),
                    "tokenizer"));
            AlbertInputPacker packer = new AlbertInputPacker(Json.asObject(vocab.get("template"), "template"),
                    Json.asInt(vocab.get("pad_id"), "pad_id"), Json.asInt(vocab.get("pad_type_id"), "pad_type_id"));
            int same = 0;
            int total = 0;
            for (String line : Files.readAllLines(dir.resolve((String) packerCase.get("file")),
                    StandardCharsets.UTF_8)) {
                if (line.isEmpty()) {
                    continue;
                }
                Map<String, Object> golden = Json.asObject(Json.parse(line), "packer line");
                String text = (String) golden.get("text");
                Object pairText = golden.get("text_pair");
                int maxLength = Json.asInt(golden.get("max_length"), "max_length");
                int padTo = Json.asInt(golden.get("pad_to"), "pad_to");
                PackedInput packed = pairText == null
                        ? packer.pack(tokenizer.encode(text), maxLength, padTo)
                        : packer.pack(tokenizer.encode(text), tokenizer.encode((String) pairText), maxLength, padTo);
                total++;
                String where = name + " max_length " + maxLength + " text " + escape(text)
                        + (pairText == null ? "" : " pair " + escape((String) pairText));
                assertEquals("input_ids for " + where, Arrays.toString(ints(golden.get("input_ids"))),
                        Arrays.toString(packed.inputIds));
                assertEquals("attention_mask for " + where, Arrays.toString(ints(golden.get("attention_mask"))),
                        Arrays.toString(packed.attentionMask));
                assertEquals("token_type_ids for " + where, Arrays.toString(ints(golden.get("token_type_ids"))),
                        Arrays.toString(packed.tokenTypeIds));
                assertEquals("truncated for " + where, golden.get("truncated"), packed.truncated);
                same++;
            }
            System.out.printf(Locale.ROOT, "PARITY %s packer %d/%d%n", name, same, total);
        }
    }

    @Test
    public void probabilitiesAndLabelsEqualThePythonRuntime() throws IOException {
        Path dir = goldenDir();
        Map<String, Object> golden = Json.asObject(Json.parse(read(dir.resolve(
                (String) cases().get("classification")))), "classification golden");
        List<String> labels = new ArrayList<>();
        for (Object label : Json.asArray(golden.get("labels"), "labels")) {
            labels.add((String) label);
        }
        int total = 0;
        for (Object entry : Json.asArray(golden.get("rows"), "rows")) {
            Map<String, Object> row = Json.asObject(entry, "row");
            List<Object> logitList = Json.asArray(row.get("logits"), "logits");
            float[] logits = new float[logitList.size()];
            for (int i = 0; i < logits.length; i++) {
                logits[i] = (float) Json.asDouble(logitList.get(i), "logit");
            }
            List<Classification.LabelScore> ranked = Classification.rank(logits, labels);
            assertEquals("label for logits " + logitList, row.get("label"), ranked.get(0).label);
            Map<String, Object> scores = Json.asObject(row.get("scores"), "scores");
            for (Classification.LabelScore score : ranked) {
                assertEquals("score of " + score.label + " for logits " + logitList,
                        Json.asDouble(scores.get(score.label), "score"), score.score, 1e-9);
            }
            total++;
        }
        assertTrue("no classification rows", total > 0);
        System.out.printf(Locale.ROOT, "PARITY classifier softmax %d/%d%n", total, total);
    }

    @Test
    public void exportedAssetsPrepareTheExampleInputs() throws IOException {
        Path dir = goldenDir();
        for (Object entry : Json.asArray(cases().get("assets"), "assets")) {
            Path assets = dir.resolve((String) entry);
            ClassifierSpec spec = ClassifierSpec.fromJson(read(assets.resolve("vocab.json")),
                    read(assets.resolve("manifest.json")));
            Map<String, Object> examples = Json.asObject(Json.parse(read(assets.resolve("examples.json"))),
                    "examples.json");
            int total = 0;
            for (Object item : Json.asArray(examples.get("examples"), "examples")) {
                Map<String, Object> example = Json.asObject(item, "example");
                String text = (String) example.get("text");
                PackedInput packed = spec.packer.pack(spec.tokenizer.encode(text), spec.maxSeqLen, 0);
                assertEquals("input_ids of " + escape(text), Arrays.toString(ints(example.get("input_ids"))),
                        Arrays.toString(packed.inputIds));
                assertEquals("token_type_ids of " + escape(text),
                        Arrays.toString(ints(example.get("token_type_ids"))), Arrays.toString(packed.tokenTypeIds));
                PackedInput forModel = spec.prepare(text);
                assertEquals(spec.fixedLength == 0 ? packed.length() : spec.fixedLength, forModel.length());
                total++;
            }
            assertTrue("no examples in " + assets, total > 0);
            Map<String, Object> android = Json.asObject(Json.asObject(Json.parse(read(assets.resolve(
                    "manifest.json"))), "manifest.json").get("android"), "android section");
            Map<String, Object> output = Json.asObject(android.get("output"), "output");
            assertEquals(Json.asInt(output.get("num_labels"), "num_labels"), spec.labels.size());
            System.out.printf(Locale.ROOT, "PARITY assets %s %d/%d%n", assets.getFileName(), total, total);
        }
    }

    private static String read(Path path) throws IOException {
        return new String(Files.readAllBytes(path), StandardCharsets.UTF_8);
    }

    private static int[] ints(Object value) {
        List<Object> list = Json.asArray(value, "id list");
        int[] out = new int[list.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = Json.asInt(list.get(i), "id");
        }
        return out;
    }

    /** Non-ASCII and control characters as \\uXXXX, so a failure message survives any console. */
    static String escape(String text) {
        StringBuilder out = new StringBuilder("\"");
        String shown = text.length() > 300 ? text.substring(0, 300) + "..." : text;
        for (char c : shown.toCharArray()) {
            if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
                out.append(c);
            } else {
                out.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
            }
        }
        return out.append('"').toString();
    }

    private static String escapeAll(List<String> words) {
        List<String> out = new ArrayList<>();
        for (String word : words) {
            out.add(escape(word));
        }
        return out.toString();
    }
}
