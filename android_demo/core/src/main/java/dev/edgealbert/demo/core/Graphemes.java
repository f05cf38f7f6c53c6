package dev.edgealbert.demo.core;

/**
 * Extended grapheme cluster boundaries (Unicode UAX #29), as the precompiled charsmap needs them.
 *
 * <p>java.text.BreakIterator is not used: before JDK 20 it does not implement extended clusters
 * (emoji ZWJ sequences, prepend marks) and Android's ICU version varies by device. Properties come
 * from {@link Character#getType} plus the few explicit lists UAX #29 adds on top of the general
 * category (taken from Unicode 16 data). Rule GB9c (Indic conjuncts) is left out on purpose: its
 * clusters are at least 9 UTF-8 bytes, which the charsmap walks code point by code point anyway.
 */
public final class Graphemes {
    private static final int OTHER = 0;
    private static final int CR = 1;
    private static final int LF = 2;
    private static final int CONTROL = 3;
    private static final int EXTEND = 4;
    private static final int ZWJ = 5;
    private static final int REGIONAL_INDICATOR = 6;
    private static final int PREPEND = 7;
    private static final int SPACING_MARK = 8;
    private static final int L = 9;
    private static final int V = 10;
    private static final int T = 11;
    private static final int LV = 12;
    private static final int LVT = 13;

    /** Spacing marks (Mc) and others that UAX #29 counts as Extend (Other_Grapheme_Extend). */
    private static final int[] OTHER_GRAPHEME_EXTEND = {
        0x9BE, 0x9BE, 0x9D7, 0x9D7, 0xB3E, 0xB3E, 0xB57, 0xB57, 0xBBE, 0xBBE, 0xBD7, 0xBD7,
        0xCC0, 0xCC0, 0xCC2, 0xCC2, 0xCC7, 0xCC8, 0xCCA, 0xCCB, 0xCD5, 0xCD6, 0xD3E, 0xD3E,
        0xD57, 0xD57, 0xDCF, 0xDCF, 0xDDF, 0xDDF, 0x1715, 0x1715, 0x1734, 0x1734, 0x1B35, 0x1B35,
        0x1B3B, 0x1B3B, 0x1B3D, 0x1B3D, 0x1B43, 0x1B44, 0x1BAA, 0x1BAA, 0x1BF2, 0x1BF3,
        0x200C, 0x200C, 0x302E, 0x302F, 0xA953, 0xA953, 0xA9C0, 0xA9C0, 0xFF9E, 0xFF9F,
        0x111C0, 0x111C0, 0x11235, 0x11235, 0x1133E, 0x1133E, 0x1134D, 0x1134D, 0x11357, 0x11357,
        0x113B8, 0x113B8, 0x113C2, 0x113C2, 0x113C5, 0x113C5, 0x113C7, 0x113C9, 0x113CF, 0x113CF,
        0x114B0, 0x114B0, 0x114BD, 0x114BD, 0x115AF, 0x115AF, 0x116B6, 0x116B6, 0x11930, 0x11930,
        0x1193D, 0x1193D, 0x11F41, 0x11F41, 0x16FF0, 0x16FF1, 0x1D165, 0x1D166, 0x1D16D, 0x1D172,
        0x1D250, 0x1D252, 0x1D25F, 0x1D25F, 0x1D280, 0x1D281,
        0x1F3FB, 0x1F3FF, // emoji modifiers are Extend since Unicode 11
        0xE0020, 0xE007F, // tags
    };

    /** Spacing marks (Mc) that are neither Extend nor SpacingMark in UAX #29. */
    private static final int[] MC_NOT_SPACING_MARK = {
        0x102B, 0x102C, 0x1038, 0x1038, 0x1062, 0x1064, 0x1067, 0x106D, 0x1083, 0x1083, 0x1087, 0x108C,
        0x108F, 0x108F, 0x109A, 0x109C, 0x1A61, 0x1A61, 0x1A63, 0x1A64, 0xAA7B, 0xAA7B, 0xAA7D, 0xAA7D,
        0x11720, 0x11721,
    };

    /** Characters that are SpacingMark although their general category is not Mc. */
    private static final int[] SPACING_MARK_EXTRA = {
        0xCF3, 0xCF3, 0xE33, 0xE33, 0xEB3, 0xEB3,
    };

    private static final int[] PREPEND_RANGES = {
        0x600, 0x605, 0x6DD, 0x6DD, 0x70F, 0x70F, 0x890, 0x891, 0x8E2, 0x8E2, 0xD4E, 0xD4E,
        0x110BD, 0x110BD, 0x110CD, 0x110CD, 0x111C2, 0x111C3, 0x113D1, 0x113D1, 0x1193F, 0x1193F,
        0x11941, 0x11941, 0x11A84, 0x11A89, 0x11D46, 0x11D46, 0x11F02, 0x11F02,
    };

    /** Unassigned default-ignorable code points, which UAX #29 counts as Control. */
    private static final int[] UNASSIGNED_CONTROL = {
        0x2065, 0x2065, 0xFFF0, 0xFFF8, 0xE0000, 0xE0000, 0xE0002, 0xE001F, 0xE0080, 0xE00FF,
        0xE01F0, 0xE0FFF,
    };

    private static final int[] EXTENDED_PICTOGRAPHIC = {
        0xA9, 0xA9, 0xAE, 0xAE, 0x203C, 0x203C, 0x2049, 0x2049, 0x2122, 0x2122, 0x2139, 0x2139,
        0x2194, 0x2199, 0x21A9, 0x21AA, 0x231A, 0x231B, 0x2328, 0x2328, 0x2388, 0x2388, 0x23CF, 0x23CF,
        0x23E9, 0x23F3, 0x23F8, 0x23FA, 0x24C2, 0x24C2, 0x25AA, 0x25AB, 0x25B6, 0x25B6, 0x25C0, 0x25C0,
        0x25FB, 0x25FE, 0x2600, 0x2605, 0x2607, 0x2612, 0x2614, 0x2685, 0x2690, 0x2705, 0x2708, 0x2712,
        0x2714, 0x2714, 0x2716, 0x2716, 0x271D, 0x271D, 0x2721, 0x2721, 0x2728, 0x2728, 0x2733, 0x2734,
        0x2744, 0x2744, 0x2747, 0x2747, 0x274C, 0x274C, 0x274E, 0x274E, 0x2753, 0x2755, 0x2757, 0x2757,
        0x2763, 0x2767, 0x2795, 0x2797, 0x27A1, 0x27A1, 0x27B0, 0x27B0, 0x27BF, 0x27BF, 0x2934, 0x2935,
        0x2B05, 0x2B07, 0x2B1B, 0x2B1C, 0x2B50, 0x2B50, 0x2B55, 0x2B55, 0x3030, 0x3030, 0x303D, 0x303D,
        0x3297, 0x3297, 0x3299, 0x3299, 0x1F000, 0x1F0FF, 0x1F10D, 0x1F10F, 0x1F12F, 0x1F12F,
        0x1F16C, 0x1F171, 0x1F17E, 0x1F17F, 0x1F18E, 0x1F18E, 0x1F191, 0x1F19A, 0x1F1AD, 0x1F1E5,
        0x1F201, 0x1F20F, 0x1F21A, 0x1F21A, 0x1F22F, 0x1F22F, 0x1F232, 0x1F23A, 0x1F23C, 0x1F23F,
        0x1F249, 0x1F3FA, 0x1F400, 0x1F53D, 0x1F546, 0x1F64F, 0x1F680, 0x1F6FF, 0x1F774, 0x1F77F,
        0x1F7D5, 0x1F7FF, 0x1F80C, 0x1F80F, 0x1F848, 0x1F84F, 0x1F85A, 0x1F85F, 0x1F888, 0x1F88F,
        0x1F8AE, 0x1F8FF, 0x1F90C, 0x1F93A, 0x1F93C, 0x1F945, 0x1F947, 0x1FAFF, 0x1FC00, 0x1FFFD,
    };

    private Graphemes() {
    }

    /** The end (exclusive, UTF-16 index) of the grapheme cluster that starts at `start`. */
    public static int next(String s, int start) {
        int cp = s.codePointAt(start);
        int i = start + Character.charCount(cp);
        int previous = property(cp);
        // GB11 state: 1 after ExtPict Extend*, 2 right after ExtPict Extend* ZWJ.
        int pictographic = isExtendedPictographic(cp) ? 1 : 0;
        int regionalRun = previous == REGIONAL_INDICATOR ? 1 : 0;
        while (i < s.length()) {
            int c = s.codePointAt(i);
            int current = property(c);
            if (isBoundary(previous, current, c, pictographic, regionalRun)) {
                break;
            }
            if (isExtendedPictographic(c)) {
                pictographic = 1;
            } else if (current == EXTEND && pictographic == 1) {
                pictographic = 1;
            } else if (current == ZWJ && pictographic == 1) {
                pictographic = 2;
            } else {
                pictographic = 0;
            }
            regionalRun = current == REGIONAL_INDICATOR ? regionalRun + 1 : 0;
            previous = current;
            i += Character.charCount(c);
        }
        return i;
    }

    private static boolean isBoundary(int previous, int current, int c, int pictographic, int regionalRun) {
        if (previous == CR && current == LF) {
            return false; // GB3
        }
        if (previous == CONTROL || previous == CR || previous == LF) {
            return true; // GB4
        }
        if (current == CONTROL || current == CR || current == LF) {
            return true; // GB5
        }
        if (previous == L && (current == L || current == V || current == LV || current == LVT)) {
            return false; // GB6
        }
        if ((previous == LV || previous == V) && (current == V || current == T)) {
            return false; // GB7
        }
        if ((previous == LVT || previous == T) && current == T) {
            return false; // GB8
        }
        if (current == EXTEND || current == ZWJ || current == SPACING_MARK) {
            return false; // GB9, GB9a
        }
        if (previous == PREPEND) {
            return false; // GB9b
        }
        if (previous == ZWJ && pictographic == 2 && isExtendedPictographic(c)) {
            return false; // GB11
        }
        if (previous == REGIONAL_INDICATOR && current == REGIONAL_INDICATOR && regionalRun % 2 == 1) {
            return false; // GB12, GB13
        }
        return true; // GB999
    }

    private static int property(int cp) {
        if (cp == 0x0D) {
            return CR;
        }
        if (cp == 0x0A) {
            return LF;
        }
        if (cp == 0x200D) {
            return ZWJ;
        }
        if (cp >= 0x1100 && cp <= 0x115F || cp >= 0xA960 && cp <= 0xA97C) {
            return L;
        }
        if (cp >= 0x1160 && cp <= 0x11A7 || cp >= 0xD7B0 && cp <= 0xD7C6) {
            return V;
        }
        if (cp >= 0x11A8 && cp <= 0x11FF || cp >= 0xD7CB && cp <= 0xD7FB) {
            return T;
        }
        if (cp >= 0xAC00 && cp <= 0xD7A3) {
            return (cp - 0xAC00) % 28 == 0 ? LV : LVT;
        }
        if (cp >= 0x1F1E6 && cp <= 0x1F1FF) {
            return REGIONAL_INDICATOR;
        }
        if (inRanges(PREPEND_RANGES, cp)) {
            return PREPEND;
        }
        if (inRanges(OTHER_GRAPHEME_EXTEND, cp)) {
            return EXTEND;
        }
        if (inRanges(SPACING_MARK_EXTRA, cp)) {
            return SPACING_MARK;
        }
        int type = Character.getType(cp);
        switch (type) {
            case Character.NON_SPACING_MARK:
            case Character.ENCLOSING_MARK:
                return EXTEND;
            case Character.COMBINING_SPACING_MARK:
                return inRanges(MC_NOT_SPACING_MARK, cp) ? OTHER : SPACING_MARK;
            case Character.CONTROL:
            case Character.FORMAT:
            case Character.LINE_SEPARATOR:
            case Character.PARAGRAPH_SEPARATOR:
            case Character.SURROGATE:
                return CONTROL;
            case Character.UNASSIGNED:
                return inRanges(UNASSIGNED_CONTROL, cp) ? CONTROL : OTHER;
            default:
                return OTHER;
        }
    }

    static boolean isExtendedPictographic(int cp) {
        return inRanges(EXTENDED_PICTOGRAPHIC, cp);
    }

    /** Binary search in a sorted array of inclusive [first, last] pairs. */
    private static boolean inRanges(int[] ranges, int cp) {
        int low = 0;
        int high = ranges.length / 2 - 1;
        while (low <= high) {
            int middle = (low + high) >>> 1;
            if (cp < ranges[2 * middle]) {
                high = middle - 1;
            } else if (cp > ranges[2 * middle + 1]) {
                low = middle + 1;
            } else {
                return true;
            }
        }
        return false;
    }
}
