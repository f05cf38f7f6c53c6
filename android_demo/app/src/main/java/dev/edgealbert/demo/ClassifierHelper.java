package dev.edgealbert.demo;

import android.content.Context;
import android.os.Handler;
import android.os.Looper;
import dev.edgealbert.demo.core.ClassifierSpec;
import java.io.Closeable;
import java.io.IOException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * Loads and runs the classifier off the UI thread and reports back through a {@link Listener}.
 *
 * <p>The helper owns its background thread: a single-thread executor created here and shut down by
 * {@link #close}. The {@link LiteRtClassifier} is created, used and closed on that thread only, so
 * a reload with another thread count can never race a classification. Listener calls arrive on the
 * main thread in the order the requests were made, and stop as soon as {@link #close} is called.
 */
public final class ClassifierHelper implements Closeable {
    /** What the helper reports. Every call arrives on the main thread. */
    public interface Listener {
        /** The model is ready; {@link #classify} results follow. */
        void onModelLoaded(ClassifierSpec spec, int numThreads, double loadMs);

        /** The assets are missing or do not fit together; classify() reports errors until a load succeeds. */
        void onModelError(String message);

        /** One text's labels, best first, with the time spent tokenizing and in the interpreter. */
        void onResult(LiteRtClassifier.Result result);

        /** One text could not be classified (no model loaded, or the interpreter failed). */
        void onClassifyError(String message);
    }

    static final String EXPORT_HINT = "Run `edge-albert export-android BUNDLE app/src/main/assets` and rebuild.";

    private final Context context;
    private final Listener listener;
    private final ExecutorService worker = Executors.newSingleThreadExecutor();
    private final Handler mainThread = new Handler(Looper.getMainLooper());
    private volatile boolean closed;
    private LiteRtClassifier classifier; // touched only on the worker thread

    public ClassifierHelper(Context context, Listener listener) {
        // The application context: the helper must not keep a destroyed Activity alive.
        this.context = context.getApplicationContext();
        this.listener = listener;
    }

    /** Load the exported model with this many interpreter threads, replacing any loaded one. */
    public void load(int numThreads) {
        submit(() -> {
            release();
            long start = System.nanoTime();
            LiteRtClassifier loaded;
            try {
                loaded = LiteRtClassifier.create(context, numThreads);
            } catch (IOException | RuntimeException e) { // a missing or incompatible export
                String message = "Cannot load the model: " + e.getMessage() + "\n" + EXPORT_HINT;
                report(() -> listener.onModelError(message));
                return;
            }
            classifier = loaded;
            double loadMs = (System.nanoTime() - start) / 1e6;
            ClassifierSpec spec = loaded.spec();
            report(() -> listener.onModelLoaded(spec, numThreads, loadMs));
        });
    }

    /** Tokenize, run and rank one text; the answer comes through onResult or onClassifyError. */
    public void classify(String text) {
        submit(() -> {
            if (classifier == null) {
                report(() -> listener.onClassifyError("the model is not loaded"));
                return;
            }
            try {
                LiteRtClassifier.Result result = classifier.classify(text);
                report(() -> listener.onResult(result));
            } catch (RuntimeException e) {
                report(() -> listener.onClassifyError(e.getMessage()));
            }
        });
    }

    /** Stop reporting, close the interpreter on the background thread and end that thread. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true; // queued requests are skipped, pending reports dropped
        worker.execute(this::release);
        worker.shutdown();
    }

    /** After {@link #close}: wait until the interpreter is closed and the thread has ended (tests). */
    boolean awaitClosed(long timeout, TimeUnit unit) throws InterruptedException {
        return worker.awaitTermination(timeout, unit);
    }

    private synchronized void submit(Runnable request) {
        if (closed) {
            return; // the screen is gone: nobody to answer
        }
        worker.execute(() -> {
            if (!closed) {
                request.run();
            }
        });
    }

    private void report(Runnable call) {
        mainThread.post(() -> {
            if (!closed) {
                call.run();
            }
        });
    }

    private void release() {
        if (classifier != null) {
            classifier.close();
            classifier = null;
        }
    }
}
