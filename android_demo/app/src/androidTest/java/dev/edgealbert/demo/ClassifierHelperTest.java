package dev.edgealbert.demo;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import android.os.Looper;
import androidx.test.ext.junit.runners.AndroidJUnit4;
import androidx.test.platform.app.InstrumentationRegistry;
import dev.edgealbert.demo.core.Classification;
import dev.edgealbert.demo.core.ClassifierSpec;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;
import org.junit.runner.RunWith;

/**
 * On a device or emulator, with exported assets: the helper answers every request through its
 * listener, on the main thread, in request order, and falls silent once closed.
 */
@RunWith(AndroidJUnit4.class)
public class ClassifierHelperTest {
    private static final long WAIT_SECONDS = 60; // a generous bound for loading the model, not a timing claim

    /** One listener call, with whether it arrived on the main thread. */
    private static final class Event {
        final String kind;
        final Object value;
        final boolean onMainThread = Looper.myLooper() == Looper.getMainLooper();

        Event(String kind, Object value) {
            this.kind = kind;
            this.value = value;
        }
    }

    private final BlockingQueue<Event> events = new LinkedBlockingQueue<>();
    private ClassifierHelper helper;

    @Before
    public void setUp() {
        helper = new ClassifierHelper(InstrumentationRegistry.getInstrumentation().getTargetContext(),
                new ClassifierHelper.Listener() {
                    @Override
                    public void onModelLoaded(ClassifierSpec spec, int numThreads, double loadMs) {
                        events.add(new Event("loaded", numThreads));
                    }

                    @Override
                    public void onModelError(String message) {
                        events.add(new Event("model-error", message));
                    }

                    @Override
                    public void onResult(LiteRtClassifier.Result result) {
                        events.add(new Event("result", result));
                    }

                    @Override
                    public void onClassifyError(String message) {
                        events.add(new Event("classify-error", message));
                    }
                });
    }

    @After
    public void tearDown() {
        helper.close();
    }

    @Test
    public void loadThenClassifyAnswerOnTheMainThreadInOrder() throws Exception {
        helper.load(2);
        helper.classify("a gripping, beautifully acted film");
        helper.classify("the plot is thin and the jokes fall flat.");
        Event loaded = next();
        assertEquals("loaded", loaded.kind);
        assertEquals(2, loaded.value);
        for (int i = 0; i < 2; i++) {
            Event event = next();
            assertEquals("result", event.kind);
            assertTrue(event.onMainThread);
            double sum = 0;
            for (Classification.LabelScore score : ((LiteRtClassifier.Result) event.value).scores) {
                sum += score.score;
            }
            assertEquals(1.0, sum, 1e-6);
        }
        assertTrue(loaded.onMainThread);
    }

    @Test
    public void classifyBeforeLoadReportsAnError() throws Exception {
        helper.classify("no model yet");
        Event event = next();
        assertEquals("classify-error", event.kind);
        assertEquals("the model is not loaded", event.value);
    }

    @Test
    public void reloadWithAnotherThreadCountKeepsClassifying() throws Exception {
        helper.load(2);
        helper.load(1);
        helper.classify("a gripping, beautifully acted film");
        assertEquals(2, next().value);
        assertEquals(1, next().value);
        assertEquals("result", next().kind);
    }

    @Test
    public void closeEndsTheThreadAndSilencesTheListener() throws Exception {
        helper.load(2);
        helper.classify("queued before close");
        helper.close();
        helper.classify("after close"); // ignored, not an exception
        helper.close(); // twice is harmless
        assertTrue("the background thread did not end", helper.awaitClosed(WAIT_SECONDS, TimeUnit.SECONDS));
        InstrumentationRegistry.getInstrumentation().waitForIdleSync(); // every posted report has run
        assertNull(events.poll());
    }

    private Event next() throws InterruptedException {
        Event event = events.poll(WAIT_SECONDS, TimeUnit.SECONDS);
        assertNotNull("the helper reported nothing", event);
        return event;
    }
}
