/*
 * heap.h - an indexed binary min-heap of pointers.
 *
 * The scheduler keeps jobs in two of these (by due time and by the start of
 * their flex window) so the next wake-up is O(1) to find and a job can be
 * re-keyed or removed in O(log n) - no rescans of all jobs per event. Each
 * item stores its own position (heap_index) so removal needs no search.
 */
#ifndef MCPJOB_HEAP_H
#define MCPJOB_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Positions are 32 bits: 8 bytes less in every item that sits in two heaps. */
#define HEAP_NONE ((uint32_t)-1)

struct heap {
	void **items;
	size_t n, cap;
	/* Sort key of an item and where it keeps its index. */
	int64_t (*key)(const void *item);
	uint32_t *(*index)(void *item);
};

void heap_init(struct heap *h, int64_t (*key)(const void *), uint32_t *(*index)(void *));
void heap_free(struct heap *h);
/* Insert, or re-position if already in the heap (after its key changed). */
void heap_update(struct heap *h, void *item);
void heap_remove(struct heap *h, void *item);
bool heap_contains(struct heap *h, void *item);
/* Smallest item or NULL. */
void *heap_peek(const struct heap *h);
void *heap_pop(struct heap *h);

#endif
