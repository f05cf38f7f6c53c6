package dev.edgealbert.demo;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import android.content.Context;
import androidx.test.ext.junit.runners.AndroidJUnit4;
import androidx.test.platform.app.InstrumentationRegistry;
import dev.edgealbert.demo.core.Classification;
import dev.edgealbert.demo.core.Json;
import dev.edgealbert.demo.core.PackedInput;
import java.util.List;
import java.util.Map;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;
import org.junit.runner.RunWith;

/**
 * On a device or emulator: the exported bundle gives the same ids as the `tokenizers` library and
 * logits within the export's tolerance of the workstation's (examples.json, written by
 * `edge-albert export-android`). Run with `./gradlew connectedAndroidTest` after exporting a bundle.
 * Calls the synchronous {@link LiteRtClassifier} directly; ClassifierHelperTest covers the thread
 * and the listener around it.
 */
@RunWith(AndroidJUnit4.class)
public class LiteRtClassifierTest {
    private Context context;
    private LiteRtClassifier classifier;
    private Map<String, Object> examples;

    @Before
    public void setUp() throws Exception {
        context = InstrumentationRegistry.getInstrumentation().getTargetContext();
        classifier = LiteRtClassifier.create(context, 2);
        examples = Json.asObject(Json.parse(LiteRtClassifier.readAsset(context, LiteRtClassifier.EXAMPLES_ASSET)),
                "examples.json");
    }

    @After
    public void tearDown() {
        classifier.close();
    }

    @Test
    public void idsAndLogitsMatchTheWorkstation() {
        double tolerance = Json.asDouble(examples.get("logit_tolerance"), "logit_tolerance");
        List<Object> items = Json.asArray(examples.get("examples"), "examples");
        assertTrue("examples.json has no examples", items.size() > 0);
        for (Object item : items) {
            Map<String, Object> example = Json.asObject(item, "example");
            String text = (String) example.get("text");
            PackedInput input = classifier.spec().prepare(text);
            int[] expectedIds = ints(example.get("input_ids"));
            int real = input.tokenCount();
            assertEquals("token count of " + text, expectedIds.length, real);
            // Unrolled models get padding after the real tokens; compare the real ones.
            assertArrayEquals("input_ids of " + text, expectedIds, java.util.Arrays.copyOf(input.inputIds, real));
            float[] logits = classifier.logits(input);
            List<Object> expected = Json.asArray(example.get("logits"), "logits");
            double best = Double.NEGATIVE_INFINITY;
            double second = Double.NEGATIVE_INFINITY;
            int expectedBest = -1;
            int actualBest = 0;
            for (int i = 0; i < logits.length; i++) {
                double value = Json.asDouble(expected.get(i), "logit");
                assertEquals("logit " + i + " of " + text, value, logits[i], tolerance);
                if (value > best) {
                    second = best;
                    best = value;
                    expectedBest = i;
                } else if (value > second) {
                    second = value;
                }
                if (logits[i] > logits[actualBest]) {
                    actualBest = i;
                }
            }
            if (best - second > 2 * tolerance) { // a near-tie may flip within the tolerance
                assertEquals("label of " + text, expectedBest, actualBest);
            }
        }
    }

    @Test
    public void classifyRanksEveryLabelAndTimesTheModel() {
        LiteRtClassifier.Result result = classifier.classify("a gripping, beautifully acted film");
        assertEquals(classifier.spec().labels.size(), result.scores.size());
        double sum = 0;
        for (Classification.LabelScore score : result.scores) {
            sum += score.score;
        }
        assertEquals(1.0, sum, 1e-6);
        assertTrue(result.scores.get(0).score >= result.scores.get(result.scores.size() - 1).score);
        assertTrue(result.inferenceMs > 0);
    }

    @Test
    public void emptyAndOverlongTextsRun() {
        assertEquals(2, classifier.classify("").tokens); // [CLS] [SEP]
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < 400; i++) {
            text.append("word").append(i).append(' ');
        }
        LiteRtClassifier.Result result = classifier.classify(text.toString());
        assertTrue(result.truncated);
        assertEquals(classifier.spec().maxSeqLen, result.tokens);
    }

    @Test
    public void threadCountDoesNotChangeTheLogits() throws Exception {
        PackedInput input = classifier.spec().prepare("the plot is thin and the jokes fall flat.");
        float[] two = classifier.logits(input);
        try (LiteRtClassifier one = LiteRtClassifier.create(context, 1)) {
            float[] single = one.logits(input);
            for (int i = 0; i < two.length; i++) {
                assertEquals(two[i], single[i], 1e-3);
            }
        }
    }

    private static int[] ints(Object value) {
        List<Object> list = Json.asArray(value, "ids");
        int[] out = new int[list.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = Json.asInt(list.get(i), "id");
        }
        return out;
    }
}
