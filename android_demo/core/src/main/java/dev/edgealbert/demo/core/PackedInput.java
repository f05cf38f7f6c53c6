package dev.edgealbert.demo.core;

/** The three int32 model inputs for one example, all of the same length. */
public final class PackedInput {
    public final int[] inputIds;
    public final int[] attentionMask;
    public final int[] tokenTypeIds;
    /** Whether text was dropped to fit the model's maximum length. */
    public final boolean truncated;

    public PackedInput(int[] inputIds, int[] attentionMask, int[] tokenTypeIds, boolean truncated) {
        if (inputIds.length != attentionMask.length || inputIds.length != tokenTypeIds.length) {
            throw new IllegalArgumentException("input arrays differ in length");
        }
        this.inputIds = inputIds;
        this.attentionMask = attentionMask;
        this.tokenTypeIds = tokenTypeIds;
        this.truncated = truncated;
    }

    public int length() {
        return inputIds.length;
    }

    /** Real tokens, specials included: the positions the attention mask keeps (padding excluded). */
    public int tokenCount() {
        int count = 0;
        for (int mask : attentionMask) {
            count += mask;
        }
        return count;
    }
}
