package dev.edgealbert.demo.core;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The pre-tokenizer of tokenizer.json: WhitespaceSplit, then Metaspace (ALBERT's pipeline).
 *
 * <p>WhitespaceSplit splits on Unicode White_Space and drops it. Metaspace replaces U+0020 with
 * the replacement character (U+2581), prepends it to every word that does not already start
 * with it (prepend_scheme "always"), and with split=true cuts the word before every replacement
 * character, each piece keeping its leading one (tokenizers' MergedWithNext).
 */
public final class PreTokenizer {
    private interface Step {
        void apply(String word, List<String> out);
    }

    private final List<Step> steps;

    private PreTokenizer(List<Step> steps) {
        this.steps = steps;
    }

    public static PreTokenizer fromJson(List<Object> stepList) {
        List<Step> steps = new ArrayList<>();
        for (int i = 0; i < stepList.size(); i++) {
            Map<String, Object> step = Json.asObject(stepList.get(i), "pre_tokenizer step " + i);
            String type = Json.asString(Json.member(step, "type", "pre_tokenizer step " + i), "pre_tokenizer type");
            switch (type) {
                case "WhitespaceSplit":
                    steps.add(PreTokenizer::whitespaceSplit);
                    break;
                case "Metaspace":
                    steps.add(metaspace(step));
                    break;
                default:
                    throw new IllegalArgumentException("pre_tokenizer step \"" + type + "\" is not supported");
            }
        }
        return new PreTokenizer(steps);
    }

    /** Split one normalised text segment into the words the model encodes one by one. */
    public List<String> split(String segment) {
        List<String> words = new ArrayList<>();
        words.add(segment);
        for (Step step : steps) {
            List<String> next = new ArrayList<>();
            for (String word : words) {
                if (!word.isEmpty()) { // tokenizers drops empty splits (e.g. text the charsmap removed)
                    step.apply(word, next);
                }
            }
            words = next;
        }
        return words;
    }

    private static void whitespaceSplit(String word, List<String> out) {
        int start = -1;
        for (int i = 0; i < word.length(); ) {
            int cp = word.codePointAt(i);
            boolean space = Whitespace.isWhitespace(cp);
            if (space && start >= 0) {
                out.add(word.substring(start, i));
                start = -1;
            } else if (!space && start < 0) {
                start = i;
            }
            i += Character.charCount(cp);
        }
        if (start >= 0) {
            out.add(word.substring(start));
        }
    }

    private static Step metaspace(Map<String, Object> step) {
        String replacement = Json.asString(Json.member(step, "replacement", "Metaspace"), "Metaspace replacement");
        if (replacement.codePointCount(0, replacement.length()) != 1) {
            throw new IllegalArgumentException("Metaspace replacement must be one character");
        }
        String scheme = Json.asString(Json.member(step, "prepend_scheme", "Metaspace"), "prepend_scheme");
        boolean split = Json.asBoolean(Json.member(step, "split", "Metaspace"), "Metaspace split");
        final boolean prepend;
        if (scheme.equals("always")) {
            prepend = true;
        } else if (scheme.equals("never")) {
            prepend = false;
        } else {
            throw new IllegalArgumentException("Metaspace prepend_scheme \"" + scheme + "\" is not supported");
        }
        return (word, out) -> {
            String replaced = word.replace(" ", replacement);
            if (prepend && !replaced.startsWith(replacement)) {
                replaced = replacement + replaced;
            }
            if (!split) {
                out.add(replaced);
                return;
            }
            int start = 0;
            int at = replaced.indexOf(replacement, 1);
            while (at >= 0) {
                out.add(replaced.substring(start, at));
                start = at;
                at = replaced.indexOf(replacement, at + replacement.length());
            }
            if (start < replaced.length()) {
                out.add(replaced.substring(start));
            }
        };
    }
}
