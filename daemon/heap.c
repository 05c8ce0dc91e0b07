/*
 * heap.c - indexed binary min-heap.
 */
#include "daemon/heap.h"

#include <stdlib.h>

#include "common/xmalloc.h"

void heap_init(struct heap *h, int64_t (*key)(const void *), uint32_t *(*index)(void *)) {
	h->items = NULL;
	h->n = h->cap = 0;
	h->key = key;
	h->index = index;
}

void heap_free(struct heap *h) {
	for (size_t i = 0; i < h->n; i++)
		*h->index(h->items[i]) = HEAP_NONE;
	free(h->items);
	h->items = NULL;
	h->n = h->cap = 0;
}

static void place(struct heap *h, size_t i, void *item) {
	h->items[i] = item;
	*h->index(item) = (uint32_t)i;
}

static void sift_up(struct heap *h, size_t i) {
	void *item = h->items[i];
	int64_t k = h->key(item);
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (h->key(h->items[parent]) <= k)
			break;
		place(h, i, h->items[parent]);
		i = parent;
	}
	place(h, i, item);
}

static void sift_down(struct heap *h, size_t i) {
	void *item = h->items[i];
	int64_t k = h->key(item);
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		int64_t mk = k;
		if (l < h->n && h->key(h->items[l]) < mk) {
			m = l;
			mk = h->key(h->items[l]);
		}
		if (r < h->n && h->key(h->items[r]) < mk)
			m = r;
		if (m == i)
			break;
		place(h, i, h->items[m]);
		i = m;
	}
	place(h, i, item);
}

bool heap_contains(struct heap *h, void *item) {
	uint32_t i = *h->index(item);
	return i != HEAP_NONE && i < h->n && h->items[i] == item;
}

void heap_update(struct heap *h, void *item) {
	if (!heap_contains(h, item)) {
		if (h->n == h->cap) {
			h->cap = h->cap ? h->cap * 2 : 64;
			h->items = xreallocarray(h->items, h->cap, sizeof *h->items);
		}
		place(h, h->n++, item);
		sift_up(h, h->n - 1);
		return;
	}
	size_t i = *h->index(item);
	sift_up(h, i);
	sift_down(h, *h->index(item));
}

void heap_remove(struct heap *h, void *item) {
	if (!heap_contains(h, item))
		return;
	size_t i = *h->index(item);
	*h->index(item) = HEAP_NONE;
	void *last = h->items[--h->n];
	if (i == h->n)
		return;
	place(h, i, last);
	sift_up(h, i);
	sift_down(h, *h->index(last));
}

void *heap_peek(const struct heap *h) {
	return h->n ? h->items[0] : NULL;
}

void *heap_pop(struct heap *h) {
	void *top = heap_peek(h);
	if (top)
		heap_remove(h, top);
	return top;
}
