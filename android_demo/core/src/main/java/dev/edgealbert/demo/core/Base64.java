package dev.edgealbert.demo.core;

/**
 * Standard base64 decoding (RFC 4648 alphabet, '=' padding).
 *
 * <p>java.util.Base64 needs Android API 26 and android.util.Base64 is not on a plain JVM; the app
 * supports API 23, so the core carries this dozen-line decoder for the precompiled charsmap.
 */
final class Base64 {
    private Base64() {
    }

    static byte[] decode(String text) {
        int[] values = new int[128];
        java.util.Arrays.fill(values, -1);
        String alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for (int i = 0; i < alphabet.length(); i++) {
            values[alphabet.charAt(i)] = i;
        }
        int length = text.length();
        while (length > 0 && text.charAt(length - 1) == '=') {
            length--;
        }
        if ((length % 4) == 1) {
            throw new IllegalArgumentException("base64 text has a bad length");
        }
        byte[] out = new byte[length * 3 / 4];
        int buffer = 0;
        int bits = 0;
        int written = 0;
        for (int i = 0; i < length; i++) {
            char c = text.charAt(i);
            int value = c < 128 ? values[c] : -1;
            if (value < 0) {
                throw new IllegalArgumentException("invalid base64 character at " + i);
            }
            buffer = (buffer << 6) | value;
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                out[written++] = (byte) (buffer >> bits);
                buffer &= (1 << bits) - 1;
            }
        }
        return out;
    }
}
