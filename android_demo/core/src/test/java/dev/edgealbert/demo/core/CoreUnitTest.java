package dev.edgealbert.demo.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/** Self-contained checks of the core's parts; the golden parity against Python is GoldenParityTest. */
public class CoreUnitTest {

    @Test
    public void jsonReadsNestedValuesEscapesAndNumbers() {
        Map<String, Object> object = Json.asObject(Json.parse(
                "{\"a\": [1, -2.5e3, true, null], \"s\": \"q\\\"\\u00e9\\ud83d\\ude00\\n\"}"), "test");
        List<Object> array = Json.asArray(object.get("a"), "a");
        assertEquals(1, Json.asInt(array.get(0), "a0"));
        assertEquals(-2500.0, Json.asDouble(array.get(1), "a1"), 0.0);
        assertEquals(Boolean.TRUE, array.get(2));
        assertEquals(null, array.get(3));
        assertEquals("q\"é😀\n", object.get("s"));
        assertThrows(IllegalArgumentException.class, () -> Json.parse("{\"a\": 1} x"));
        assertThrows(IllegalArgumentException.class, () -> Json.asInt(Json.parse("1.5"), "n"));
    }

    @Test
    public void base64DecodesWithAndWithoutPadding() {
        assertEquals("hello", new String(Base64.decode("aGVsbG8="), StandardCharsets.UTF_8));
        assertEquals("hell", new String(Base64.decode("aGVsbA=="), StandardCharsets.UTF_8));
        assertEquals(0, Base64.decode("").length);
        assertThrows(IllegalArgumentException.class, () -> Base64.decode("a$bc"));
    }

    @Test
    public void graphemesFollowExtendedClusterRules() {
        assertEquals(Arrays.asList("e\u0301", "x"), clusters("e\u0301x"));
        assertEquals(Arrays.asList("\r\n", "a"), clusters("\r\na"));
        assertEquals(Arrays.asList("\n", "\u0301"), clusters("\n\u0301")); // no Extend after a control
        assertEquals(Arrays.asList("👍🏽", "!"), clusters("👍🏽!"));
        assertEquals(Arrays.asList("👨\u200d👩\u200d👧"), clusters("👨\u200d👩\u200d👧"));
        assertEquals(Arrays.asList("a\u200d", "b"), clusters("a\u200db")); // GB11 needs a pictograph first
        assertEquals(Arrays.asList("🇩🇪", "🇫🇷", "🇮"), clusters("🇩🇪🇫🇷🇮"));
        assertEquals(Arrays.asList("\u1100\u1161\u11a8", "\uac00"), clusters("\u1100\u1161\u11a8\uac00"));
        assertEquals(Arrays.asList("\u0600a", "b"), clusters("\u0600ab")); // prepend mark
        assertEquals(Arrays.asList("a\u0903", "b"), clusters("a\u0903b")); // spacing mark
        assertEquals(Arrays.asList("a\u0e33"), clusters("a\u0e33")); // Thai sara am
    }

    @Test
    public void normalizerStepsMatchTheTokenizersLibrary() {
        assertEquals("σασ i\u0307 ß", TextNormalizer.lowercase("ΣΑΣ \u0130 ß")); // no final sigma
        assertEquals("cafe ab", TextNormalizer.stripAccents("cafe\u0301 a\u0903b"));
        TextNormalizer normalizer = TextNormalizer.fromJson(Json.asArray(Json.parse(
                "[{\"type\": \"Replace\", \"pattern\": \"``\", \"regex\": false, \"content\": \"\\\"\"},"
                        + " {\"type\": \"NFKD\"}, {\"type\": \"StripAccents\"}, {\"type\": \"Lowercase\"},"
                        + " {\"type\": \"Replace\", \"pattern\": \" {2,}\", \"regex\": true, \"content\": \" \"}]"),
                "steps"));
        assertEquals("\"cafe\" fi fi", normalizer.normalize("``Café`` ﬁ   ﬁ"));
        assertThrows(IllegalArgumentException.class, () -> TextNormalizer.fromJson(
                Json.asArray(Json.parse("[{\"type\": \"BertNormalizer\"}]"), "steps")));
    }

    @Test
    public void preTokenizerSplitsOnWhitespaceAndPrependsMetaspace() {
        PreTokenizer preTokenizer = PreTokenizer.fromJson(Json.asArray(Json.parse(
                "[{\"type\": \"WhitespaceSplit\"}, {\"type\": \"Metaspace\", \"replacement\": \"\u2581\","
                        + " \"prepend_scheme\": \"always\", \"split\": true}]"), "steps"));
        assertEquals(Arrays.asList("\u2581hello", "\u2581world"), preTokenizer.split(" hello\u00a0\u3000world\t"));
        assertEquals(Arrays.asList("\u2581a", "\u2581", "\u2581b"), preTokenizer.split("\u2581a\u2581\u2581b"));
        assertEquals(Arrays.asList(), preTokenizer.split(" \n "));
        PreTokenizer metaspaceOnly = PreTokenizer.fromJson(Json.asArray(Json.parse(
                "[{\"type\": \"Metaspace\", \"replacement\": \"\u2581\", \"prepend_scheme\": \"always\","
                        + " \"split\": true}]"), "steps"));
        assertEquals(Arrays.asList("\u2581a", "\u2581", "\u2581b"), metaspaceOnly.split("a  b"));
        assertEquals(Arrays.asList(), metaspaceOnly.split("")); // nothing left after normalisation: no token
    }

    @Test
    public void unigramPicksTheBestPathFusesUnknownsAndFallsBackToBytes() {
        String[] pieces = {"<unk>", "\u2581", "\u2581ab", "\u2581a", "b", "c", "<0xC3>", "<0xA9>"};
        double[] scores = {0.0, -1.0, -1.5, -1.0, -1.0, -2.0, -5.0, -5.0};
        UnigramModel model = new UnigramModel(pieces, scores, 0, false);
        assertArrayEquals(new int[] {2}, encode(model, "\u2581ab")); // -1.5 beats -1.0 + -1.0
        assertArrayEquals(new int[] {1, 0, 5}, encode(model, "\u2581xyc")); // x and y fused into one <unk>
        assertArrayEquals(new int[] {1, 0}, encode(model, "\u2581😀"));
        UnigramModel bytes = new UnigramModel(pieces, scores, 0, true);
        assertArrayEquals(new int[] {1, 6, 7}, encode(bytes, "\u2581é"));
        assertArrayEquals(new int[] {1, 0}, encode(bytes, "\u2581x")); // no <0x78> piece: unk
    }

    @Test
    public void packerAddsSpecialsTruncatesAndPads() {
        AlbertInputPacker packer = new AlbertInputPacker(Json.asObject(Json.parse(
                "{\"single\": [{\"special_ids\": [2], \"type_id\": 0}, {\"sequence\": \"A\", \"type_id\": 0},"
                        + " {\"special_ids\": [3], \"type_id\": 0}],"
                        + " \"pair\": [{\"special_ids\": [2], \"type_id\": 0}, {\"sequence\": \"A\", \"type_id\": 0},"
                        + " {\"special_ids\": [3], \"type_id\": 0}, {\"sequence\": \"B\", \"type_id\": 1},"
                        + " {\"special_ids\": [3], \"type_id\": 1}]}"), "template"), 0, 0);
        PackedInput single = packer.pack(new int[] {10, 11, 12, 13}, 5, 0);
        assertArrayEquals(new int[] {2, 10, 11, 12, 3}, single.inputIds);
        assertArrayEquals(new int[] {1, 1, 1, 1, 1}, single.attentionMask);
        assertTrue(single.truncated);
        PackedInput padded = packer.pack(new int[] {10}, 8, 6);
        assertArrayEquals(new int[] {2, 10, 3, 0, 0, 0}, padded.inputIds);
        assertArrayEquals(new int[] {1, 1, 1, 0, 0, 0}, padded.attentionMask);
        assertFalse(padded.truncated);
        assertEquals(5, single.tokenCount());
        assertEquals(3, padded.tokenCount());
        assertEquals(6, padded.length());
        PackedInput pair = packer.pack(new int[] {10, 11}, new int[] {20, 21, 22, 23, 24}, 8, 0);
        assertArrayEquals(new int[] {2, 10, 11, 3, 20, 21, 22, 3}, pair.inputIds);
        assertArrayEquals(new int[] {0, 0, 0, 0, 1, 1, 1, 1}, pair.tokenTypeIds);
        assertArrayEquals(new int[] {3, 4}, AlbertInputPacker.longestFirst(9, 9, 7));
        assertArrayEquals(new int[] {1, 6}, AlbertInputPacker.longestFirst(1, 9, 7));
        assertThrows(IllegalArgumentException.class, () -> packer.pack(new int[] {1}, 1, 0));
    }

    @Test
    public void softmaxIsStableAndRankingKeepsLabelOrderOnTies() {
        double[] probabilities = Classification.softmax(new float[] {1000f, 1000f, -1000f});
        assertEquals(0.5, probabilities[0], 1e-12);
        assertEquals(0.0, probabilities[2], 1e-12);
        List<Classification.LabelScore> ranked = Classification.rank(new float[] {0.5f, 0.5f, 2f},
                Arrays.asList("a", "b", "c"));
        assertEquals("c", ranked.get(0).label);
        assertEquals("a", ranked.get(1).label);
        assertThrows(IllegalArgumentException.class, () -> Classification.rank(new float[] {1f},
                Arrays.asList("a", "b")));
    }

    @Test
    public void precompiledCharsmapRefusesABadHeader() {
        assertThrows(IllegalArgumentException.class, () -> new PrecompiledCharsmap(new byte[] {8, 0, 0, 0, 1}));
        assertThrows(IllegalArgumentException.class, () -> new PrecompiledCharsmap(new byte[] {1, 0}));
    }

    private static int[] encode(UnigramModel model, String word) {
        IntList out = new IntList();
        model.encode(word, out);
        return out.toArray();
    }

    private static List<String> clusters(String text) {
        List<String> out = new ArrayList<>();
        for (int start = 0; start < text.length(); ) {
            int end = Graphemes.next(text, start);
            out.add(text.substring(start, end));
            start = end;
        }
        return out;
    }
}
