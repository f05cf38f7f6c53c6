package dev.edgealbert.demo;

import android.content.Context;
import android.content.res.AssetFileDescriptor;
import dev.edgealbert.demo.core.Classification;
import dev.edgealbert.demo.core.ClassifierSpec;
import dev.edgealbert.demo.core.PackedInput;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.tensorflow.lite.Interpreter;

/**
 * The LiteRT Interpreter for the exported bundle: tokenize with the core, run the model, rank the labels.
 *
 * <p>Synchronous and not thread-safe: {@link ClassifierHelper} creates, uses and closes it on its
 * one background thread, and the instrumented test calls it directly. The model is memory-mapped
 * from the APK (stored uncompressed, see noCompress in app/build.gradle), so it is paged in by the
 * OS instead of being copied onto the Java heap.
 */
public final class LiteRtClassifier implements Closeable {
    // The names `edge-albert export-android` writes (edge_albert/android_export.py).
    public static final String MANIFEST_ASSET = "manifest.json";
    public static final String VOCAB_ASSET = "vocab.json";
    public static final String MODEL_ASSET = "model.tflite";
    public static final String EXAMPLES_ASSET = "examples.json";

    /** Labels best first, with the time spent in the tokenizer and in the interpreter. */
    public static final class Result {
        public final List<Classification.LabelScore> scores;
        public final double tokenizeMs;
        public final double inferenceMs;
        public final int tokens;
        public final boolean truncated;

        Result(List<Classification.LabelScore> scores, double tokenizeMs, double inferenceMs, int tokens,
               boolean truncated) {
            this.scores = scores;
            this.tokenizeMs = tokenizeMs;
            this.inferenceMs = inferenceMs;
            this.tokens = tokens;
            this.truncated = truncated;
        }
    }

    private final ClassifierSpec spec;
    private final Interpreter interpreter;
    private final int numThreads;
    private int allocatedLength = -1;

    private LiteRtClassifier(ClassifierSpec spec, Interpreter interpreter, int numThreads) {
        this.spec = spec;
        this.interpreter = interpreter;
        this.numThreads = numThreads;
    }

    /** Load manifest.json, vocab.json and model.tflite from the app's assets. */
    public static LiteRtClassifier create(Context context, int numThreads) throws IOException {
        ClassifierSpec spec = ClassifierSpec.fromJson(readAsset(context, VOCAB_ASSET), readAsset(context, MANIFEST_ASSET));
        Interpreter.Options options = new Interpreter.Options()
                .setNumThreads(numThreads)
                .setUseXNNPACK(true);
        Interpreter interpreter = new Interpreter(mapAsset(context, MODEL_ASSET), options);
        int outputs = interpreter.getOutputTensor(spec.logitsIndex).shape()[1];
        if (outputs != spec.labels.size()) {
            interpreter.close();
            throw new IOException("model.tflite gives " + outputs + " logits but manifest.json has "
                    + spec.labels.size() + " labels: export the bundle again");
        }
        return new LiteRtClassifier(spec, interpreter, numThreads);
    }

    public ClassifierSpec spec() {
        return spec;
    }

    public int numThreads() {
        return numThreads;
    }

    /** Tokenize, run the model and rank the labels. */
    public Result classify(String text) {
        long start = System.nanoTime();
        PackedInput input = spec.prepare(text);
        long tokenized = System.nanoTime();
        float[] logits = logits(input);
        long done = System.nanoTime();
        return new Result(Classification.rank(logits, spec.labels), (tokenized - start) / 1e6,
                (done - tokenized) / 1e6, input.tokenCount(), input.truncated);
    }

    /** Raw logits for packed inputs (the instrumented test compares them with the Python side's). */
    public float[] logits(PackedInput input) {
        int length = input.length();
        if (spec.fixedLength == 0 && length != allocatedLength) {
            // Loop-form models take any length: resize to this text instead of padding to max_seq_len.
            int[] shape = {1, length};
            interpreter.resizeInput(spec.inputIdsIndex, shape);
            interpreter.resizeInput(spec.attentionMaskIndex, shape);
            interpreter.resizeInput(spec.tokenTypeIdsIndex, shape);
            interpreter.allocateTensors();
            allocatedLength = length;
        }
        Object[] inputs = new Object[3];
        inputs[spec.inputIdsIndex] = new int[][] {input.inputIds};
        inputs[spec.attentionMaskIndex] = new int[][] {input.attentionMask};
        inputs[spec.tokenTypeIdsIndex] = new int[][] {input.tokenTypeIds};
        float[][] logits = new float[1][spec.labels.size()];
        Map<Integer, Object> outputs = new HashMap<>();
        outputs.put(spec.logitsIndex, logits);
        interpreter.runForMultipleInputsOutputs(inputs, outputs);
        return logits[0];
    }

    @Override
    public void close() {
        interpreter.close();
    }

    static String readAsset(Context context, String name) throws IOException {
        try (InputStream in = context.getAssets().open(name)) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buffer = new byte[1 << 16];
            for (int n = in.read(buffer); n >= 0; n = in.read(buffer)) {
                out.write(buffer, 0, n);
            }
            return new String(out.toByteArray(), StandardCharsets.UTF_8);
        }
    }

    private static MappedByteBuffer mapAsset(Context context, String name) throws IOException {
        try (AssetFileDescriptor descriptor = context.getAssets().openFd(name);
             FileInputStream stream = new FileInputStream(descriptor.getFileDescriptor());
             FileChannel channel = stream.getChannel()) {
            return channel.map(FileChannel.MapMode.READ_ONLY, descriptor.getStartOffset(),
                    descriptor.getDeclaredLength());
        }
    }
}
