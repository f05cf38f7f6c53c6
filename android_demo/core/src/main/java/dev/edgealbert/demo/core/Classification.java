package dev.edgealbert.demo.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/** Softmax over the model's logits and the mapping to the bundle's labels. */
public final class Classification {
    /** One label with its probability. */
    public static final class LabelScore {
        public final int index;
        public final String label;
        public final double score;

        LabelScore(int index, String label, double score) {
            this.index = index;
            this.label = label;
            this.score = score;
        }

        @Override
        public String toString() {
            return String.format(java.util.Locale.ROOT, "%s %.4f", label, score);
        }
    }

    private Classification() {
    }

    /** Probabilities from logits, computed in double after subtracting the maximum (no overflow). */
    public static double[] softmax(float[] logits) {
        if (logits.length == 0) {
            throw new IllegalArgumentException("no logits");
        }
        double max = Double.NEGATIVE_INFINITY;
        for (float logit : logits) {
            if (Float.isNaN(logit)) {
                throw new IllegalArgumentException("the model returned NaN logits");
            }
            max = Math.max(max, logit);
        }
        double[] out = new double[logits.length];
        double sum = 0;
        for (int i = 0; i < logits.length; i++) {
            out[i] = Math.exp(logits[i] - max);
            sum += out[i];
        }
        for (int i = 0; i < out.length; i++) {
            out[i] /= sum;
        }
        return out;
    }

    /** Labels with their probabilities, best first; ties keep the label order. */
    public static List<LabelScore> rank(float[] logits, List<String> labels) {
        if (labels.size() != logits.length) {
            throw new IllegalArgumentException("the model gives " + logits.length + " logits but the bundle has "
                    + labels.size() + " labels");
        }
        double[] probabilities = softmax(logits);
        List<LabelScore> ranked = new ArrayList<>();
        for (int i = 0; i < probabilities.length; i++) {
            ranked.add(new LabelScore(i, labels.get(i), probabilities[i]));
        }
        Collections.sort(ranked, (a, b) -> a.score != b.score ? Double.compare(b.score, a.score)
                : Integer.compare(a.index, b.index));
        return ranked;
    }
}
