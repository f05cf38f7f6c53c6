package dev.edgealbert.demo.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * Everything the app needs to drive the model, read from the two JSON assets that
 * `edge-albert export-android` writes: vocab.json (tokenizer, template, labels, max_seq_len) and
 * manifest.json (the bundle manifest plus an "android" section with the model's tensor indices).
 */
public final class ClassifierSpec {
    public static final String VOCAB_FORMAT = "edge-albert-android-vocab";
    public static final String ANDROID_FORMAT = "edge-albert-android";
    public static final int FORMAT_VERSION = 1;

    public final SentencePieceTokenizer tokenizer;
    public final AlbertInputPacker packer;
    public final List<String> labels;
    public final int maxSeqLen;
    /** Length every input must be padded to (unrolled graph), or 0 for a dynamic length (loop graph). */
    public final int fixedLength;
    public final int inputIdsIndex;
    public final int attentionMaskIndex;
    public final int tokenTypeIdsIndex;
    public final int logitsIndex;

    private ClassifierSpec(SentencePieceTokenizer tokenizer, AlbertInputPacker packer, List<String> labels,
                           int maxSeqLen, int fixedLength, int inputIdsIndex, int attentionMaskIndex,
                           int tokenTypeIdsIndex, int logitsIndex) {
        this.tokenizer = tokenizer;
        this.packer = packer;
        this.labels = labels;
        this.maxSeqLen = maxSeqLen;
        this.fixedLength = fixedLength;
        this.inputIdsIndex = inputIdsIndex;
        this.attentionMaskIndex = attentionMaskIndex;
        this.tokenTypeIdsIndex = tokenTypeIdsIndex;
        this.logitsIndex = logitsIndex;
    }

    /** Parse both assets; a file from another format version is refused with a clear message. */
    public static ClassifierSpec fromJson(String vocabText, String manifestText) {
        Map<String, Object> vocab = Json.asObject(Json.parse(vocabText), "vocab.json");
        checkFormat(vocab, VOCAB_FORMAT, "vocab.json");
        Map<String, Object> manifest = Json.asObject(Json.parse(manifestText), "manifest.json");
        Map<String, Object> android = Json.asObject(Json.member(manifest, "android", "manifest.json"),
                "manifest.json android section");
        checkFormat(android, ANDROID_FORMAT, "manifest.json android section");

        SentencePieceTokenizer tokenizer = SentencePieceTokenizer.fromJson(
                Json.asObject(Json.member(vocab, "tokenizer", "vocab.json"), "tokenizer"));
        AlbertInputPacker packer = new AlbertInputPacker(
                Json.asObject(Json.member(vocab, "template", "vocab.json"), "template"),
                Json.asInt(Json.member(vocab, "pad_id", "vocab.json"), "pad_id"),
                Json.asInt(Json.member(vocab, "pad_type_id", "vocab.json"), "pad_type_id"));
        List<String> labels = new ArrayList<>();
        for (Object label : Json.asArray(Json.member(vocab, "labels", "vocab.json"), "labels")) {
            labels.add(Json.asString(label, "label"));
        }
        int maxSeqLen = Json.asInt(Json.member(vocab, "max_seq_len", "vocab.json"), "max_seq_len");
        Object fixed = Json.member(android, "sequence_length", "android section");
        int fixedLength = fixed == null ? 0 : Json.asInt(fixed, "sequence_length");
        Map<String, Object> inputs = Json.asObject(Json.member(android, "inputs", "android section"), "inputs");
        Map<String, Object> output = Json.asObject(Json.member(android, "output", "android section"), "output");
        return new ClassifierSpec(tokenizer, packer, Collections.unmodifiableList(labels), maxSeqLen, fixedLength,
                Json.asInt(Json.member(inputs, "input_ids", "inputs"), "input_ids index"),
                Json.asInt(Json.member(inputs, "attention_mask", "inputs"), "attention_mask index"),
                Json.asInt(Json.member(inputs, "token_type_ids", "inputs"), "token_type_ids index"),
                Json.asInt(Json.member(output, "index", "output"), "logits index"));
    }

    /** Parse vocab.json alone (tests and tools that do not run the model). */
    public static Map<String, Object> readVocab(String vocabText) {
        Map<String, Object> vocab = Json.asObject(Json.parse(vocabText), "vocab.json");
        checkFormat(vocab, VOCAB_FORMAT, "vocab.json");
        return vocab;
    }

    /** Tokenize and pack one text for the model. */
    public PackedInput prepare(String text) {
        return packer.pack(tokenizer.encode(text), maxSeqLen, fixedLength);
    }

    private static void checkFormat(Map<String, Object> object, String format, String what) {
        Object name = object.get("format");
        Object version = object.get("format_version");
        if (!format.equals(name)) {
            throw new IllegalArgumentException(what + " is not an " + format + " file (format " + name + ")");
        }
        if (!(version instanceof Double) || ((Double) version).intValue() != FORMAT_VERSION) {
            throw new IllegalArgumentException(what + " has format version " + version + "; this app reads version "
                    + FORMAT_VERSION + " (export the bundle again with a matching edge-albert)");
        }
    }
}
