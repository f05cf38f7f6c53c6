package dev.edgealbert.demo.core;

/**
 * Unicode White_Space, which Rust's char::is_whitespace (and so the tokenizers library) uses.
 *
 * <p>Java's Character.isWhitespace differs: it excludes no-break spaces (U+00A0, U+2007, U+202F)
 * and includes the information separators U+001C..U+001F.
 */
final class Whitespace {
    private Whitespace() {
    }

    static boolean isWhitespace(int cp) {
        return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680
                || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F
                || cp == 0x205F || cp == 0x3000;
    }
}
