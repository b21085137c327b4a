/* list.h - intrusive circular doubly linked list.
 *
 * A list head and its elements are the same struct; an empty head points at
 * itself. Elements embed a `list_t` and are recovered with LIST_ENTRY. No
 * allocation happens here; removing an element leaves it self-linked so a
 * second removal is harmless. */
#ifndef BORE_LIST_H
#define BORE_LIST_H

#include <stddef.h>

typedef struct list_s {
    struct list_s *next, *prev;
} list_t;

#define LIST_ENTRY(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static inline void list_init(list_t *h) { h->next = h->prev = h; }
static inline int list_empty(const list_t *h) { return h->next == h; }

static inline void list_push(list_t *h, list_t *e)
{
    e->prev = h->prev;
    e->next = h;
    h->prev->next = e;
    h->prev = e;
}

static inline void list_remove(list_t *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->next = e->prev = e;
}

#endif
