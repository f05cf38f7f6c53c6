package dev.edgealbert.demo.core;

import java.util.List;
import java.util.Map;

/**
 * The bundle's tokenizer (tokenizer.json, as exported by `edge-albert export-android`) in plain Java.
 *
 * <p>Same order of work as the `tokenizers` library: added tokens ([CLS], [SEP], ..., and the
 * user-defined pieces transformers turns into added tokens) are cut out of the raw text first,
 * leftmost-longest; every other stretch of text is normalised, pre-tokenized into words, and
 * each word is segmented by the unigram model.
 */
public final class SentencePieceTokenizer {
    private final String[] addedContents;
    private final int[] addedIds;
    private final TextNormalizer normalizer;
    private final PreTokenizer preTokenizer;
    private final UnigramModel model;

    public SentencePieceTokenizer(String[] addedContents, int[] addedIds, TextNormalizer normalizer,
                                  PreTokenizer preTokenizer, UnigramModel model) {
        this.addedContents = addedContents;
        this.addedIds = addedIds;
        this.normalizer = normalizer;
        this.preTokenizer = preTokenizer;
        this.model = model;
    }

    /** Build from the "tokenizer" object of the exported vocabulary file. */
    public static SentencePieceTokenizer fromJson(Map<String, Object> tokenizer) {
        Map<String, Object> modelJson = Json.asObject(Json.member(tokenizer, "model", "tokenizer"), "model");
        String type = Json.asString(Json.member(modelJson, "type", "model"), "model type");
        if (!type.equals("Unigram")) {
            throw new IllegalArgumentException("model type \"" + type + "\" is not supported (Unigram only)");
        }
        if (!Json.asBoolean(Json.member(modelJson, "fuse_unk", "model"), "fuse_unk")) {
            throw new IllegalArgumentException("only fuse_unk=true is supported, as tokenizers' Unigram has it");
        }
        List<Object> pieceList = Json.asArray(Json.member(modelJson, "pieces", "model"), "pieces");
        String[] pieces = new String[pieceList.size()];
        double[] scores = new double[pieceList.size()];
        for (int i = 0; i < pieces.length; i++) {
            List<Object> entry = Json.asArray(pieceList.get(i), "piece " + i);
            pieces[i] = Json.asString(entry.get(0), "piece " + i);
            scores[i] = Json.asDouble(entry.get(1), "score of piece " + i);
        }
        UnigramModel model = new UnigramModel(pieces, scores,
                Json.asInt(Json.member(modelJson, "unk_id", "model"), "unk_id"),
                Json.asBoolean(Json.member(modelJson, "byte_fallback", "model"), "byte_fallback"));

        List<Object> addedList = Json.asArray(Json.member(tokenizer, "added_tokens", "tokenizer"), "added_tokens");
        String[] contents = new String[addedList.size()];
        int[] ids = new int[addedList.size()];
        for (int i = 0; i < contents.length; i++) {
            Map<String, Object> added = Json.asObject(addedList.get(i), "added token " + i);
            contents[i] = Json.asString(Json.member(added, "content", "added token"), "content");
            ids[i] = Json.asInt(Json.member(added, "id", "added token"), "id");
            if (contents[i].isEmpty()) {
                throw new IllegalArgumentException("added token " + i + " is empty");
            }
        }
        TextNormalizer normalizer = TextNormalizer.fromJson(
                Json.asArray(Json.member(tokenizer, "normalizer", "tokenizer"), "normalizer"));
        PreTokenizer preTokenizer = PreTokenizer.fromJson(
                Json.asArray(Json.member(tokenizer, "pre_tokenizer", "tokenizer"), "pre_tokenizer"));
        return new SentencePieceTokenizer(contents, ids, normalizer, preTokenizer, model);
    }

    public UnigramModel model() {
        return model;
    }

    /** Token ids of `text`, without [CLS]/[SEP] (the packer adds those). */
    public int[] encode(String text) {
        IntList out = new IntList();
        int segmentStart = 0;
        int i = 0;
        while (i < text.length()) {
            int match = longestAddedTokenAt(text, i);
            if (match < 0) {
                i++;
                continue;
            }
            encodeSegment(text.substring(segmentStart, i), out);
            out.add(addedIds[match]);
            i += addedContents[match].length();
            segmentStart = i;
        }
        encodeSegment(text.substring(segmentStart), out);
        return out.toArray();
    }

    /** The normalised words of `text` (for debugging a mismatch). */
    public List<String> words(String text) {
        return preTokenizer.split(normalizer.normalize(text));
    }

    private void encodeSegment(String segment, IntList out) {
        if (segment.isEmpty()) {
            return;
        }
        for (String word : preTokenizer.split(normalizer.normalize(segment))) {
            model.encode(word, out);
        }
    }

    private int longestAddedTokenAt(String text, int at) {
        int best = -1;
        for (int k = 0; k < addedContents.length; k++) {
            if (text.startsWith(addedContents[k], at)
                    && (best < 0 || addedContents[k].length() > addedContents[best].length())) {
                best = k;
            }
        }
        return best;
    }
}
