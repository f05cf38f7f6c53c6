package dev.edgealbert.demo.core;

import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/**
 * SentencePiece unigram segmentation, as the `tokenizers` library's Unigram model does it.
 *
 * <p>Viterbi over every vocabulary piece with its log-probability score: at each character
 * position, every piece that starts there is a candidate edge; a character that no one-character
 * piece covers gets an unknown edge scored (lowest score - 10). Ties keep the earlier candidate.
 * Walking back, consecutive unknowns are fused into one token (fuse_unk), which then becomes
 * its own id if it is a piece, its UTF-8 bytes as &lt;0xXX&gt; pieces with byte_fallback, or unk_id.
 */
public final class UnigramModel {
    private static final double UNK_PENALTY = 10.0;

    private final String[] pieces;
    private final double[] scores;
    private final Map<String, Integer> ids;
    private final int unkId;
    private final boolean byteFallback;
    private final double unkScore;
    private final int maxPieceLength;

    public UnigramModel(String[] pieces, double[] scores, int unkId, boolean byteFallback) {
        if (pieces.length != scores.length || pieces.length == 0) {
            throw new IllegalArgumentException("a unigram model needs one score per piece");
        }
        if (unkId < 0 || unkId >= pieces.length) {
            throw new IllegalArgumentException("unk_id " + unkId + " is not a piece id");
        }
        this.pieces = pieces;
        this.scores = scores;
        this.unkId = unkId;
        this.byteFallback = byteFallback;
        this.ids = new HashMap<>(pieces.length * 2);
        double minScore = Double.POSITIVE_INFINITY;
        int longest = 1;
        for (int id = 0; id < pieces.length; id++) {
            ids.put(pieces[id], id); // a duplicated piece maps to its last id, as in tokenizers
            minScore = Math.min(minScore, scores[id]);
            longest = Math.max(longest, pieces[id].length());
        }
        this.unkScore = minScore - UNK_PENALTY;
        this.maxPieceLength = longest;
    }

    public int size() {
        return pieces.length;
    }

    public String piece(int id) {
        return pieces[id];
    }

    public Integer pieceId(String piece) {
        return ids.get(piece);
    }

    /** Append the ids of one pre-tokenized word to `out`. */
    public void encode(String word, IntList out) {
        int n = word.length();
        if (n == 0) {
            return;
        }
        double[] best = new double[n + 1];
        int[] from = new int[n + 1];
        int[] nodeId = new int[n + 1];
        java.util.Arrays.fill(from, -1);
        for (int start = 0; start < n; ) {
            int charLength = Character.charCount(word.codePointAt(start));
            double base = best[start];
            boolean coveredByOnePiece = false;
            int limit = Math.min(maxPieceLength, n - start);
            for (int length = 1; length <= limit; length++) {
                int end = start + length;
                if (end < n && Character.isLowSurrogate(word.charAt(end))
                        && Character.isHighSurrogate(word.charAt(end - 1))) {
                    continue; // never end a candidate inside a surrogate pair
                }
                Integer id = ids.get(word.substring(start, end));
                if (id == null) {
                    continue;
                }
                double candidate = scores[id] + base;
                if (from[end] < 0 || candidate > best[end]) {
                    best[end] = candidate;
                    from[end] = start;
                    nodeId[end] = id;
                }
                if (length == charLength) {
                    coveredByOnePiece = true;
                }
            }
            if (!coveredByOnePiece) {
                int end = start + charLength;
                double candidate = unkScore + base;
                if (from[end] < 0 || candidate > best[end]) {
                    best[end] = candidate;
                    from[end] = start;
                    nodeId[end] = unkId;
                }
            }
            start += charLength;
        }
        // Walk back from the end, then emit in order.
        int count = 0;
        int[] starts = new int[n];
        int[] ends = new int[n];
        for (int end = n; end > 0; end = from[end]) {
            starts[count] = from[end];
            ends[count] = end;
            count++;
        }
        int fusedStart = -1;
        int fusedEnd = -1;
        for (int k = count - 1; k >= 0; k--) {
            int end = ends[k];
            if (nodeId[end] == unkId) {
                if (fusedStart < 0) {
                    fusedStart = starts[k];
                }
                fusedEnd = end;
                continue;
            }
            if (fusedStart >= 0) {
                emit(word.substring(fusedStart, fusedEnd), out);
                fusedStart = -1;
            }
            emit(word.substring(starts[k], end), out);
        }
        if (fusedStart >= 0) {
            emit(word.substring(fusedStart, fusedEnd), out);
        }
    }

    private void emit(String token, IntList out) {
        Integer id = ids.get(token);
        if (id != null) {
            out.add(id);
            return;
        }
        if (byteFallback) {
            byte[] bytes = token.getBytes(StandardCharsets.UTF_8);
            int[] byteIds = new int[bytes.length];
            boolean all = true;
            for (int i = 0; i < bytes.length && all; i++) {
                Integer byteId = ids.get(String.format(Locale.ROOT, "<0x%02X>", bytes[i] & 0xFF));
                if (byteId == null) {
                    all = false;
                } else {
                    byteIds[i] = byteId;
                }
            }
            if (all) {
                for (int byteId : byteIds) {
                    out.add(byteId);
                }
                return;
            }
        }
        out.add(unkId);
    }
}
