package dev.edgealbert.demo.core;

import java.util.List;
import java.util.Map;

/**
 * ALBERT input packing: [CLS] A [SEP] (and B [SEP] for a pair), attention mask, token type ids,
 * truncation to the model's maximum length, optional right padding for fixed-length models.
 *
 * <p>The layout comes from tokenizer.json's TemplateProcessing, exported as "template".
 * Truncation is transformers' default "longest_first" as the `tokenizers` library implements it
 * (truncate_encodings): a single text keeps its first max_length - 2 tokens; in a pair the longer
 * side is cut first, and when both are long each keeps about half the room.
 */
public final class AlbertInputPacker {
    private final Item[] single;
    private final Item[] pair;
    private final int padId;
    private final int padTypeId;

    private static final class Item {
        final int[] specialIds; // null for a sequence slot
        final int sequence; // 0 = A, 1 = B
        final int typeId;

        Item(int[] specialIds, int sequence, int typeId) {
            this.specialIds = specialIds;
            this.sequence = sequence;
            this.typeId = typeId;
        }
    }

    public AlbertInputPacker(Map<String, Object> template, int padId, int padTypeId) {
        this.single = items(Json.asArray(Json.member(template, "single", "template"), "template.single"));
        this.pair = items(Json.asArray(Json.member(template, "pair", "template"), "template.pair"));
        this.padId = padId;
        this.padTypeId = padTypeId;
    }

    private static Item[] items(List<Object> list) {
        Item[] items = new Item[list.size()];
        for (int i = 0; i < items.length; i++) {
            Map<String, Object> item = Json.asObject(list.get(i), "template item " + i);
            int typeId = Json.asInt(Json.member(item, "type_id", "template item"), "type_id");
            if (item.containsKey("special_ids")) {
                List<Object> idList = Json.asArray(item.get("special_ids"), "special_ids");
                int[] ids = new int[idList.size()];
                for (int k = 0; k < ids.length; k++) {
                    ids[k] = Json.asInt(idList.get(k), "special id");
                }
                items[i] = new Item(ids, -1, typeId);
            } else {
                String sequence = Json.asString(Json.member(item, "sequence", "template item"), "sequence");
                if (!sequence.equals("A") && !sequence.equals("B")) {
                    throw new IllegalArgumentException("template sequence must be A or B, not " + sequence);
                }
                items[i] = new Item(null, sequence.equals("A") ? 0 : 1, typeId);
            }
        }
        return items;
    }

    /** Pack one text. `padTo` 0 keeps the natural length (models with a dynamic length). */
    public PackedInput pack(int[] first, int maxLength, int padTo) {
        return pack(first, null, maxLength, padTo);
    }

    /** Pack a text pair (`second` may be null for a single text). */
    public PackedInput pack(int[] first, int[] second, int maxLength, int padTo) {
        Item[] layout = second == null ? single : pair;
        int specials = 0;
        for (Item item : layout) {
            specials += item.specialIds == null ? 0 : item.specialIds.length;
        }
        int room = maxLength - specials;
        if (room < 0) {
            throw new IllegalArgumentException("max length " + maxLength + " leaves no room for "
                    + specials + " special tokens");
        }
        int keepFirst = first.length;
        int keepSecond = second == null ? 0 : second.length;
        if (keepFirst + keepSecond > room) {
            if (second == null) {
                keepFirst = room;
            } else {
                int[] kept = longestFirst(first.length, second.length, room);
                keepFirst = kept[0];
                keepSecond = kept[1];
            }
        }
        boolean truncated = keepFirst < first.length || (second != null && keepSecond < second.length);
        int length = specials + keepFirst + keepSecond;
        int total = Math.max(length, padTo);
        int[] ids = new int[total];
        int[] mask = new int[total];
        int[] types = new int[total];
        int at = 0;
        for (Item item : layout) {
            if (item.specialIds != null) {
                for (int id : item.specialIds) {
                    ids[at] = id;
                    mask[at] = 1;
                    types[at] = item.typeId;
                    at++;
                }
            } else {
                int[] source = item.sequence == 0 ? first : second;
                int keep = item.sequence == 0 ? keepFirst : keepSecond;
                for (int k = 0; k < keep; k++) {
                    ids[at] = source[k];
                    mask[at] = 1;
                    types[at] = item.typeId;
                    at++;
                }
            }
        }
        for (; at < total; at++) {
            ids[at] = padId;
            types[at] = padTypeId;
        }
        return new PackedInput(ids, mask, types, truncated);
    }

    /** How many tokens of each side longest_first keeps (tokenizers' truncate_encodings). */
    static int[] longestFirst(int firstLength, int secondLength, int room) {
        boolean swap = firstLength > secondLength;
        int n1 = swap ? secondLength : firstLength; // the shorter
        int n2;
        if (n1 > room) {
            n2 = n1;
        } else {
            n2 = Math.max(n1, room - n1);
        }
        if (n1 + n2 > room) {
            n1 = room / 2;
            n2 = n1 + room % 2;
        }
        int keepFirst = swap ? n2 : n1;
        int keepSecond = swap ? n1 : n2;
        return new int[] {Math.min(keepFirst, firstLength), Math.min(keepSecond, secondLength)};
    }
}
