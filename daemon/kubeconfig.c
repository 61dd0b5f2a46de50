/* The API server of a kubeconfig's current context, for spark.master (libyaml document API). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "kubeconfig.h"
#include "macro.h"

static bool node_is_null(const yaml_node_t *n) {
        static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
        const char *v;

        if (!n)
                return true;
        if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        v = (const char *) n->data.scalar.value;
        for (size_t i = 0; i < ELEMENTSOF(nulls); i++)
                if (strcmp(v, nulls[i]) == 0)
                        return true;
        return false;
}

static yaml_node_t *mapping_get(yaml_document_t *doc, yaml_node_t *map, const char *key) {
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
                yaml_node_t *k = yaml_document_get_node(doc, p->key);

                if (k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == strlen(key) &&
                    memcmp(k->data.scalar.value, key, k->data.scalar.length) == 0)
                        return yaml_document_get_node(doc, p->value);
        }
        return NULL;
}

/* A string field: 0 with *ret NULL when absent or null, -EBADMSG when it is not a string. */
static int mapping_get_string(yaml_document_t *doc, yaml_node_t *map, const char *key, const char **ret) {
        yaml_node_t *n = mapping_get(doc, map, key);

        if (node_is_null(n)) {
                *ret = NULL;
                return 0;
        }
        if (n->type != YAML_SCALAR_NODE || strlen((const char *) n->data.scalar.value) != n->data.scalar.length)
                return -EBADMSG;
        *ret = (const char *) n->data.scalar.value;
        return 0;
}

/* The mapping under key `field` of the entry named `name` in the list `list` (contexts or
 * clusters). -ENOENT when there is none; -EBADMSG when the list is malformed or the name is
 * there twice (kubectl refuses such a file too). */
static int named_entry(yaml_document_t *doc, yaml_node_t *root, const char *list, const char *field,
                       const char *name, yaml_node_t **ret) {
        yaml_node_t *seq = mapping_get(doc, root, list), *found = NULL;

        if (node_is_null(seq))
                return -ENOENT;
        if (seq->type != YAML_SEQUENCE_NODE)
                return -EBADMSG;

        for (yaml_node_item_t *i = seq->data.sequence.items.start; i < seq->data.sequence.items.top; i++) {
                yaml_node_t *item = yaml_document_get_node(doc, *i), *value;
                const char *n;
                int r;

                if (!item || item->type != YAML_MAPPING_NODE)
                        return -EBADMSG;
                r = mapping_get_string(doc, item, "name", &n);
                if (r < 0)
                        return r;
                if (!n || strcmp(n, name) != 0)
                        continue;
                if (found)
                        return -EBADMSG;
                value = mapping_get(doc, item, field);
                if (node_is_null(value))
                        return -ENOENT;
                if (value->type != YAML_MAPPING_NODE)
                        return -EBADMSG;
                found = value;
        }
        if (!found)
                return -ENOENT;
        *ret = found;
        return 0;
}

static int document_current_server(yaml_document_t *doc, char **ret_server) {
        yaml_node_t *root = yaml_document_get_root_node(doc), *context, *cluster;
        const char *current, *cluster_name, *server;
        char *s;
        int r;

        if (node_is_null(root)) /* an empty file: a kubeconfig with nothing in it */
                return -ENOENT;
        if (root->type != YAML_MAPPING_NODE)
                return -EBADMSG;

        r = mapping_get_string(doc, root, "current-context", &current);
        if (r < 0)
                return r;
        if (!current)
                return -ENOENT;

        r = named_entry(doc, root, "contexts", "context", current, &context);
        if (r < 0)
                return r;
        r = mapping_get_string(doc, context, "cluster", &cluster_name);
        if (r < 0)
                return r;
        if (!cluster_name)
                return -ENOENT;

        r = named_entry(doc, root, "clusters", "cluster", cluster_name, &cluster);
        if (r < 0)
                return r;
        r = mapping_get_string(doc, cluster, "server", &server);
        if (r < 0)
                return r;
        if (!server)
                return -ENODATA;

        s = strdup(server);
        if (!s)
                return -ENOMEM;
        *ret_server = s;
        return 0;
}

int kubeconfig_current_server(const char *text, size_t len, char **ret_server) {
        yaml_parser_t parser;
        yaml_document_t doc;
        int r;

        if (!text && len > 0)
                return -EINVAL;
        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *) (text ? text : ""), len);
        if (!yaml_parser_load(&parser, &doc)) {
                r = parser.error == YAML_MEMORY_ERROR ? -ENOMEM : -EBADMSG;
                yaml_parser_delete(&parser);
                return r;
        }

        r = document_current_server(&doc, ret_server);

        yaml_document_delete(&doc);
        yaml_parser_delete(&parser);
        return r;
}
