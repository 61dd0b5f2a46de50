/* Wiping what jansson held: see json-wipe.h. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "base/json-wipe.h"

static void json_wipe_strings(json_t *v) {
        const char *key;
        json_t *item;
        size_t i;

        if (json_is_string(v))
                explicit_bzero((char *) json_string_value(v), json_string_length(v));
        else if (json_is_object(v))
                json_object_foreach(v, key, item) json_wipe_strings(item);
        else if (json_is_array(v))
                json_array_foreach(v, i, item) json_wipe_strings(item);
}

void json_wipe_and_decref(json_t *v) {
        if (!v)
                return;
        json_wipe_strings(v);
        json_decref(v);
}

void json_wipe_and_decrefp(json_t **v) {
        json_wipe_and_decref(*v);
}

void json_wiping_free(void *p) {
        if (!p)
                return;
        explicit_bzero(p, malloc_usable_size(p));
        free(p);
}
