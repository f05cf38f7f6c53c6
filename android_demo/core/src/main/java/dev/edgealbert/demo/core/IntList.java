package dev.edgealbert.demo.core;

import java.util.Arrays;

/** A growable int array, so token ids are not boxed one by one. */
public final class IntList {
    private int[] values = new int[16];
    private int size;

    public void add(int value) {
        if (size == values.length) {
            values = Arrays.copyOf(values, size * 2);
        }
        values[size++] = value;
    }

    public void addAll(int[] more) {
        for (int value : more) {
            add(value);
        }
    }

    public int size() {
        return size;
    }

    public int get(int index) {
        if (index >= size) {
            throw new IndexOutOfBoundsException(index + " >= " + size);
        }
        return values[index];
    }

    public int[] toArray() {
        return Arrays.copyOf(values, size);
    }
}
