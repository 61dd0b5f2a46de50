/* One intrusive doubly linked list for every module (after systemd's list.h): the links live in
 * the item, so adding and removing never allocate. */
#pragma once

#include <stddef.h>

/* The links of one list, named after it: LIST_FIELDS(Item, queue) gives queue_next, queue_prev.
 * An item on two lists has two LIST_FIELDS with different names. */
#define LIST_FIELDS(t, name) t *name##_next, *name##_prev

#define LIST_HEAD(t, name) t *name

#define LIST_INIT(name, item)                                     \
        do {                                                      \
                typeof(*(item)) *_item_ = (item);                 \
                _item_->name##_prev = _item_->name##_next = NULL; \
        } while (0)

#define LIST_PREPEND(name, head, item)                                \
        do {                                                          \
                typeof(*(head)) **_head_ = &(head), *_item_ = (item); \
                _item_->name##_prev = NULL;                           \
                _item_->name##_next = *_head_;                        \
                if (*_head_)                                          \
                        (*_head_)->name##_prev = _item_;              \
                *_head_ = _item_;                                     \
        } while (0)

/* Walks to the tail: fine for the short lists this daemon keeps. */
#define LIST_APPEND(name, head, item)                                                     \
        do {                                                                              \
                typeof(*(head)) **_head_ = &(head), *_item_ = (item), *_tail_;            \
                _item_->name##_next = NULL;                                               \
                if (!*_head_) {                                                           \
                        _item_->name##_prev = NULL;                                       \
                        *_head_ = _item_;                                                 \
                        break;                                                            \
                }                                                                         \
                for (_tail_ = *_head_; _tail_->name##_next; _tail_ = _tail_->name##_next) \
                        ;                                                                 \
                _tail_->name##_next = _item_;                                             \
                _item_->name##_prev = _tail_;                                             \
        } while (0)

/* Unlinks item from the list at head and clears its links. */
#define LIST_REMOVE(name, head, item)                                           \
        do {                                                                    \
                typeof(*(head)) **_head_ = &(head), *_item_ = (item);           \
                if (_item_->name##_next)                                        \
                        _item_->name##_next->name##_prev = _item_->name##_prev; \
                if (_item_->name##_prev)                                        \
                        _item_->name##_prev->name##_next = _item_->name##_next; \
                else if (*_head_ == _item_)                                     \
                        *_head_ = _item_->name##_next;                          \
                _item_->name##_next = _item_->name##_prev = NULL;               \
        } while (0)

#define LIST_FOREACH(name, i, head) for ((i) = (head); (i); (i) = (i)->name##_next)

/* The body may free i: n holds the next item. */
#define LIST_FOREACH_SAFE(name, i, n, head) for ((i) = (head); (i) && (((n) = (i)->name##_next), 1); (i) = (n))
