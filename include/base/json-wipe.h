/* jansson keeps its own copies of every string it parses or is given, tokens included, and frees
 * them without wiping. The one place that deals with that: wipe a document before letting it go,
 * and a free() for json_set_alloc_funcs() that wipes every block. */
#pragma once

#include <jansson.h>

/* Wipe every string in v (objects and arrays recursively), then drop the reference. NULL-safe.
 * Only for documents nobody else holds a reference into. */
void json_wipe_and_decref(json_t *v);
/* For _cleanup_(json_wipe_and_decrefp). */
void json_wipe_and_decrefp(json_t **v);

/* free() that wipes the whole block first (malloc_usable_size()); NULL-safe. */
void json_wiping_free(void *p);
