package dev.edgealbert.demo;

import android.app.Activity;
import android.os.Bundle;
import android.text.TextUtils;
import android.view.View;
import android.widget.AdapterView;
import android.widget.Button;
import android.widget.EditText;
import android.widget.Spinner;
import android.widget.TextView;
import dev.edgealbert.demo.core.Classification;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * One screen: a text box, a thread-count choice, Classify, the labels with scores and the time.
 *
 * <p>All model work runs on one background thread that owns the {@link ClassifierHelper}; this
 * class only moves text in and results out.
 */
public final class MainActivity extends Activity {
    private final ExecutorService worker = Executors.newSingleThreadExecutor();
    private ClassifierHelper helper; // touched only on the worker thread

    private EditText input;
    private Button classify;
    private TextView result;
    private TextView timing;
    private TextView status;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_main);
        input = findViewById(R.id.input_text);
        classify = findViewById(R.id.classify);
        result = findViewById(R.id.result);
        timing = findViewById(R.id.timing);
        status = findViewById(R.id.status);
        Spinner threads = findViewById(R.id.threads);
        threads.setSelection(1); // 2 threads
        threads.setOnItemSelectedListener(new AdapterView.OnItemSelectedListener() {
            @Override
            public void onItemSelected(AdapterView<?> parent, View view, int position, long id) {
                load(Integer.parseInt(parent.getItemAtPosition(position).toString()));
            }

            @Override
            public void onNothingSelected(AdapterView<?> parent) {
            }
        });
        classify.setOnClickListener(v -> classify(input.getText().toString()));
    }

    private void load(int numThreads) {
        classify.setEnabled(false);
        status.setText(R.string.loading);
        worker.execute(() -> {
            try {
                if (helper != null) {
                    helper.close();
                    helper = null;
                }
                long start = System.nanoTime();
                helper = ClassifierHelper.create(this, numThreads);
                double loadMs = (System.nanoTime() - start) / 1e6;
                String text = String.format(Locale.ROOT,
                        "%s, %s graph, max %d tokens, %d thread(s), XNNPACK on; loaded in %.0f ms",
                        TextUtils.join("/", helper.spec().labels),
                        helper.spec().fixedLength == 0 ? "loop" : "unrolled", helper.spec().maxSeqLen,
                        numThreads, loadMs);
                runOnUiThread(() -> {
                    status.setText(text);
                    classify.setEnabled(true);
                });
            } catch (Exception e) { // a missing or incompatible export: say so on screen
                runOnUiThread(() -> status.setText("Cannot load the model: " + e.getMessage()
                        + "\nRun `edge-albert export-android BUNDLE app/src/main/assets` and rebuild."));
            }
        });
    }

    private void classify(String text) {
        classify.setEnabled(false);
        worker.execute(() -> {
            try {
                ClassifierHelper.Result classified = helper.classify(text);
                StringBuilder scores = new StringBuilder();
                for (Classification.LabelScore score : classified.scores) {
                    scores.append(String.format(Locale.ROOT, "%s  %.3f%n", score.label, score.score));
                }
                String time = String.format(Locale.ROOT, "inference %.1f ms, tokenizer %.1f ms, %d tokens%s",
                        classified.inferenceMs, classified.tokenizeMs, classified.tokens,
                        classified.truncated ? " (text truncated)" : "");
                runOnUiThread(() -> {
                    result.setText(scores.toString().trim());
                    timing.setText(time);
                    classify.setEnabled(true);
                });
            } catch (RuntimeException e) {
                runOnUiThread(() -> {
                    result.setText("Error: " + e.getMessage());
                    classify.setEnabled(true);
                });
            }
        });
    }

    @Override
    protected void onDestroy() {
        worker.execute(() -> {
            if (helper != null) {
                helper.close();
                helper = null;
            }
        });
        worker.shutdown();
        super.onDestroy();
    }
}
