package dev.edgealbert.demo.core;

import java.text.Normalizer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The normaliser pipeline of the bundle's tokenizer.json, step by step in the exported order.
 *
 * <p>ALBERT's is: Replace `` and '' with ", NFKD, StripAccents (both absent with keep_accents),
 * Lowercase (absent when cased), Precompiled charsmap; tokenizer.json files written by
 * transformers 4 add a Replace of the regex " {2,}" by one space. Each step mirrors the
 * `tokenizers` library: Lowercase maps code point by code point (no final-sigma rule, unlike
 * String.toLowerCase) and StripAccents removes every combining mark (Mn, Mc, Me).
 */
public final class TextNormalizer {
    private interface Step {
        String apply(String text);
    }

    private final List<Step> steps;

    private TextNormalizer(List<Step> steps) {
        this.steps = steps;
    }

    /** Build from the exported step list ([{"type": "NFKD"}, ...]); unknown types are refused. */
    public static TextNormalizer fromJson(List<Object> stepList) {
        List<Step> steps = new ArrayList<>();
        for (int i = 0; i < stepList.size(); i++) {
            Map<String, Object> step = Json.asObject(stepList.get(i), "normalizer step " + i);
            String type = Json.asString(Json.member(step, "type", "normalizer step " + i), "normalizer type");
            switch (type) {
                case "Replace":
                    steps.add(replaceStep(step));
                    break;
                case "NFC":
                    steps.add(text -> Normalizer.normalize(text, Normalizer.Form.NFC));
                    break;
                case "NFD":
                    steps.add(text -> Normalizer.normalize(text, Normalizer.Form.NFD));
                    break;
                case "NFKC":
                    steps.add(text -> Normalizer.normalize(text, Normalizer.Form.NFKC));
                    break;
                case "NFKD":
                    steps.add(text -> Normalizer.normalize(text, Normalizer.Form.NFKD));
                    break;
                case "StripAccents":
                    steps.add(TextNormalizer::stripAccents);
                    break;
                case "Lowercase":
                    steps.add(TextNormalizer::lowercase);
                    break;
                case "Strip": {
                    boolean left = Json.asBoolean(Json.member(step, "strip_left", "Strip"), "strip_left");
                    boolean right = Json.asBoolean(Json.member(step, "strip_right", "Strip"), "strip_right");
                    steps.add(text -> strip(text, left, right));
                    break;
                }
                case "Precompiled": {
                    String blob = Json.asString(
                            Json.member(step, "precompiled_charsmap", "Precompiled"), "precompiled_charsmap");
                    PrecompiledCharsmap charsmap = PrecompiledCharsmap.fromBase64(blob);
                    steps.add(charsmap::normalize);
                    break;
                }
                default:
                    throw new IllegalArgumentException("normalizer step \"" + type + "\" is not supported");
            }
        }
        return new TextNormalizer(steps);
    }

    public String normalize(String text) {
        String out = text;
        for (Step step : steps) {
            out = step.apply(out);
        }
        return out;
    }

    private static Step replaceStep(Map<String, Object> step) {
        String pattern = Json.asString(Json.member(step, "pattern", "Replace"), "Replace pattern");
        String content = Json.asString(Json.member(step, "content", "Replace"), "Replace content");
        boolean regex = Json.asBoolean(Json.member(step, "regex", "Replace"), "Replace regex");
        if (!regex) {
            if (pattern.isEmpty()) {
                throw new IllegalArgumentException("Replace with an empty pattern is not supported");
            }
            return text -> text.replace(pattern, content);
        }
        Pattern compiled = Pattern.compile(pattern);
        String literal = Matcher.quoteReplacement(content);
        return text -> compiled.matcher(text).replaceAll(literal);
    }

    static String stripAccents(String text) {
        StringBuilder out = new StringBuilder(text.length());
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            int type = Character.getType(cp);
            if (type != Character.NON_SPACING_MARK && type != Character.ENCLOSING_MARK
                    && type != Character.COMBINING_SPACING_MARK) {
                out.appendCodePoint(cp);
            }
            i += Character.charCount(cp);
        }
        return out.toString();
    }

    static String lowercase(String text) {
        StringBuilder out = new StringBuilder(text.length());
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            if (cp == 0x130) {
                out.append("i\u0307"); // the one unconditional multi-character lowercase mapping
            } else {
                out.appendCodePoint(Character.toLowerCase(cp));
            }
            i += Character.charCount(cp);
        }
        return out.toString();
    }

    static String strip(String text, boolean left, boolean right) {
        int start = 0;
        int end = text.length();
        while (left && start < end && Whitespace.isWhitespace(text.codePointAt(start))) {
            start += Character.charCount(text.codePointAt(start));
        }
        while (right && end > start && Whitespace.isWhitespace(text.codePointBefore(end))) {
            end -= Character.charCount(text.codePointBefore(end));
        }
        return text.substring(start, end);
    }
}
