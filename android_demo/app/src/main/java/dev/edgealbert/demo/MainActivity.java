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
import dev.edgealbert.demo.core.ClassifierSpec;
import java.util.Locale;

/**
 * One screen: a text box, a thread-count choice, Classify, the labels with scores and the time.
 *
 * <p>Only wires views to the {@link ClassifierHelper}: requests go in from the view listeners,
 * results come back through {@link ClassifierHelper.Listener} on the main thread.
 */
public final class MainActivity extends Activity implements ClassifierHelper.Listener {
    private ClassifierHelper helper;

    private Button classify;
    private TextView result;
    private TextView timing;
    private TextView status;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_main);
        helper = new ClassifierHelper(this, this);
        EditText input = findViewById(R.id.input_text);
        classify = findViewById(R.id.classify);
        result = findViewById(R.id.result);
        timing = findViewById(R.id.timing);
        status = findViewById(R.id.status);
        Spinner threads = findViewById(R.id.threads);
        threads.setSelection(1); // 2 threads; the first layout pass selects it and loads the model
        threads.setOnItemSelectedListener(new AdapterView.OnItemSelectedListener() {
            @Override
            public void onItemSelected(AdapterView<?> parent, View view, int position, long id) {
                classify.setEnabled(false);
                status.setText(R.string.loading);
                helper.load(Integer.parseInt(parent.getItemAtPosition(position).toString()));
            }

            @Override
            public void onNothingSelected(AdapterView<?> parent) {
            }
        });
        classify.setOnClickListener(v -> {
            classify.setEnabled(false);
            helper.classify(input.getText().toString());
        });
    }

    @Override
    public void onModelLoaded(ClassifierSpec spec, int numThreads, double loadMs) {
        status.setText(String.format(Locale.ROOT,
                "%s, %s graph, max %d tokens, %d thread(s), XNNPACK on; loaded in %.0f ms",
                TextUtils.join("/", spec.labels), spec.fixedLength == 0 ? "loop" : "unrolled", spec.maxSeqLen,
                numThreads, loadMs));
        classify.setEnabled(true);
    }

    @Override
    public void onModelError(String message) {
        status.setText(message);
    }

    @Override
    public void onResult(LiteRtClassifier.Result classified) {
        StringBuilder scores = new StringBuilder();
        for (Classification.LabelScore score : classified.scores) {
            scores.append(String.format(Locale.ROOT, "%s  %.3f%n", score.label, score.score));
        }
        result.setText(scores.toString().trim());
        timing.setText(String.format(Locale.ROOT, "inference %.1f ms, tokenizer %.1f ms, %d tokens%s",
                classified.inferenceMs, classified.tokenizeMs, classified.tokens,
                classified.truncated ? " (text truncated)" : ""));
        classify.setEnabled(true);
    }

    @Override
    public void onClassifyError(String message) {
        result.setText("Error: " + message);
        classify.setEnabled(true);
    }

    @Override
    protected void onDestroy() {
        helper.close();
        super.onDestroy();
    }
}
