package dev.edgealbert.demo.core;

import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * SentencePiece's precompiled normalisation map (the "Precompiled" normaliser of tokenizer.json).
 *
 * <p>The blob is a little-endian u32 byte length of a Darts-clone double-array trie, the trie's
 * u32 units, then NUL-terminated UTF-8 replacement strings; a trie value is the byte offset of
 * its replacement. Matching follows the Hugging Face `tokenizers` normaliser, not SentencePiece's
 * C++ one: text is walked in extended grapheme clusters; a cluster shorter than 6 UTF-8 bytes is
 * looked up whole, and the <em>shortest</em> trie key that is a prefix of it replaces the whole
 * cluster; otherwise (or when nothing matches) each code point is looked up on its own.
 */
public final class PrecompiledCharsmap {
    private final int[] units;
    private final byte[] pool;
    private final Map<Integer, String> replacements = new HashMap<>();

    public PrecompiledCharsmap(byte[] blob) {
        if (blob.length < 4) {
            throw new IllegalArgumentException("precompiled_charsmap is shorter than its 4-byte header");
        }
        long trieBytes = readU32(blob, 0);
        if (trieBytes % 4 != 0 || 4 + trieBytes > blob.length || trieBytes == 0) {
            throw new IllegalArgumentException("precompiled_charsmap has a bad trie size " + trieBytes);
        }
        units = new int[(int) (trieBytes / 4)];
        for (int i = 0; i < units.length; i++) {
            units[i] = (int) readU32(blob, 4 + 4 * i);
        }
        int poolStart = 4 + (int) trieBytes;
        pool = new byte[blob.length - poolStart];
        System.arraycopy(blob, poolStart, pool, 0, pool.length);
    }

    /** Build from the base64 text stored in tokenizer.json and in the exported vocabulary. */
    public static PrecompiledCharsmap fromBase64(String base64) {
        return new PrecompiledCharsmap(Base64.decode(base64));
    }

    /** Normalise a string the way tokenizers' Precompiled normaliser does. */
    public String normalize(String text) {
        StringBuilder out = new StringBuilder(text.length());
        int start = 0;
        while (start < text.length()) {
            int end = Graphemes.next(text, start);
            String grapheme = text.substring(start, end);
            String replacement = null;
            if (utf8Length(grapheme) < 6) {
                replacement = transform(grapheme);
            }
            if (replacement != null) {
                out.append(replacement);
            } else {
                int i = 0;
                while (i < grapheme.length()) {
                    int cp = grapheme.codePointAt(i);
                    int n = Character.charCount(cp);
                    String single = transform(grapheme.substring(i, i + n));
                    if (single != null) {
                        out.append(single);
                    } else {
                        out.appendCodePoint(cp);
                    }
                    i += n;
                }
            }
            start = end;
        }
        return out.toString();
    }

    /** The replacement of the shortest trie key that prefixes `chunk`, or null when none does. */
    public String transform(String chunk) {
        int value = firstPrefixValue(chunk.getBytes(StandardCharsets.UTF_8));
        if (value < 0) {
            return null;
        }
        String cached = replacements.get(value);
        if (cached != null) {
            return cached;
        }
        int end = value;
        while (end < pool.length && pool[end] != 0) {
            end++;
        }
        String replacement = new String(pool, value, end - value, StandardCharsets.UTF_8);
        replacements.put(value, replacement);
        return replacement;
    }

    /** Darts-clone common-prefix search, stopping at the first (shortest) key found. */
    private int firstPrefixValue(byte[] key) {
        int node = 0;
        int unit = units[0];
        node ^= offset(unit);
        for (byte b : key) {
            int c = b & 0xFF;
            if (c == 0) {
                return -1;
            }
            node ^= c;
            if (node < 0 || node >= units.length) {
                return -1;
            }
            unit = units[node];
            if (label(unit) != c) {
                return -1;
            }
            node ^= offset(unit);
            if (hasLeaf(unit)) {
                if (node < 0 || node >= units.length) {
                    return -1;
                }
                return units[node] & 0x7FFFFFFF;
            }
        }
        return -1;
    }

    private static boolean hasLeaf(int unit) {
        return ((unit >>> 8) & 1) == 1;
    }

    private static int label(int unit) {
        return unit & (0x80000000 | 0xFF);
    }

    private static int offset(int unit) {
        return (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
    }

    private static long readU32(byte[] bytes, int at) {
        return (bytes[at] & 0xFFL) | (bytes[at + 1] & 0xFFL) << 8 | (bytes[at + 2] & 0xFFL) << 16
                | (bytes[at + 3] & 0xFFL) << 24;
    }

    static int utf8Length(String s) {
        int bytes = 0;
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
            i += Character.charCount(cp);
        }
        return bytes;
    }
}
