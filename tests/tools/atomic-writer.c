/* Test tool for the writers (atomic.c, outputs.c), one JSON line per result on stdout:
 *   atomic-writer replace PATH CONTENT_FILE [MODE]     atomic_replace(), MKDIR_PARENTS
 *   atomic-writer outputs OPTS TOKEN                   outputs_write_all() once
 *   atomic-writer loop OPTS TOKEN...                   outputs_write_all() with each token in
 *                                                      turn, forever; "READY" after one round
 *   atomic-writer cleanup OPTS                         remove stale temp files
 * OPTS: --token-file PATH, --props PATH (repeatable), --kubeconfig PATH. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/atomic.h"
#include "base/util.h"
#include "outputs/outputs.h"
#include "shared/config.h"

static const char *errno_name(int r) {
        static char buf[32];

        switch (-r) {
        case 0:
                return "0";
        case ENOSPC:
                return "ENOSPC";
        case EROFS:
                return "EROFS";
        case EACCES:
                return "EACCES";
        case EPERM:
                return "EPERM";
        case EDQUOT:
                return "EDQUOT";
        case ENOENT:
                return "ENOENT";
        case ENOTDIR:
                return "ENOTDIR";
        case EISDIR:
                return "EISDIR";
        case ELOOP:
                return "ELOOP";
        case EFBIG:
                return "EFBIG";
        case EINVAL:
                return "EINVAL";
        }
        snprintf(buf, sizeof buf, "%d", -r);
        return buf;
}

static void print_json_string(const char *s) {
        putchar('"');
        for (; s && *s; s++) {
                if (*s == '"' || *s == '\\')
                        printf("\\%c", *s);
                else if ((unsigned char) *s < 0x20)
                        printf("\\u%04x", (unsigned char) *s);
                else
                        putchar(*s);
        }
        putchar('"');
}

static int do_replace(int argc, char **argv) {
        _cleanup_free_ char *data = NULL;
        AtomicResult res = {};
        mode_t mode = 0600;
        size_t len;
        int r;

        if (argc < 4)
                return 64;
        if (argc > 4)
                mode = (mode_t) strtoul(argv[4], NULL, 8);
        r = read_file_full(argv[3], 64 << 20, &data, &len);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", argv[3], strerror(-r));
                return 64;
        }
        r = atomic_replace(argv[2], data, len, mode, ATOMIC_MKDIR_PARENTS, &res);
        printf("{\"result\": %d, \"errno\": \"%s\", \"unchanged\": %s, \"mode_narrowed\": %s, "
               "\"old_mode\": %u, \"created\": %s}\n",
               r, errno_name(r), res.unchanged ? "true" : "false", res.mode_narrowed ? "true" : "false",
               (unsigned) res.old_mode, res.created ? "true" : "false");
        return r < 0 ? 1 : 0;
}

/* Fills p from OPTS; returns the index of the first argument after them. */
static int parse_outputs_opts(int argc, char **argv, int i, ProfileConfig *p) {
        for (; i < argc; i++) {
                if (strcmp(argv[i], "--token-file") == 0 && i + 1 < argc)
                        p->token_file = argv[++i];
                else if (strcmp(argv[i], "--kubeconfig") == 0 && i + 1 < argc)
                        p->kubeconfig = argv[++i];
                else if (strcmp(argv[i], "--props") == 0 && i + 1 < argc) {
                        p->spark_properties = reallocarray(p->spark_properties, p->n_spark_properties + 1,
                                                           sizeof(char *));
                        if (!p->spark_properties)
                                abort();
                        p->spark_properties[p->n_spark_properties++] = argv[++i];
                } else
                        break;
        }
        return i;
}

static void print_outputs(const Outputs *o, int r) {
        printf("{\"result\": %d, \"errno\": \"%s\", \"all_ok\": %s, \"outputs\": [", r, errno_name(r),
               outputs_all_ok(o) ? "true" : "false");
        for (size_t i = 0; i < o->n; i++) {
                const Output *out = &o->items[i];

                printf("%s{\"kind\": \"%s\", \"path\": ", i > 0 ? ", " : "", output_kind_to_string(out->kind));
                print_json_string(out->path);
                printf(", \"attempted\": %s, \"result\": %d, \"errno\": \"%s\", \"message\": ",
                       out->attempted ? "true" : "false", out->last_result, errno_name(out->last_result));
                if (out->last_message)
                        print_json_string(out->last_message);
                else
                        printf("null");
                printf(", \"narrowed_logged\": %s}", out->narrowed_logged ? "true" : "false");
        }
        printf("]}\n");
        fflush(stdout);
}

int main(int argc, char **argv) {
        ProfileConfig p = { .name = (char *) "test" };
        _cleanup_(outputs_freep) Outputs *o = NULL;
        const char *cmd = argc > 1 ? argv[1] : "";
        int i, r;

        if (strcmp(cmd, "replace") == 0)
                return do_replace(argc, argv);

        i = parse_outputs_opts(argc, argv, 2, &p);
        r = outputs_new(&p, NULL, &o);
        free(p.spark_properties);
        if (r < 0)
                return 1;

        if (strcmp(cmd, "cleanup") == 0) {
                int total = 0;

                for (size_t k = 0; k < o->n; k++) {
                        r = atomic_remove_stale_temps(o->items[k].path);
                        if (r < 0) {
                                fprintf(stderr, "%s: %s\n", o->items[k].path, strerror(-r));
                                return 1;
                        }
                        total += r;
                }
                printf("{\"removed\": %d}\n", total);
                return 0;
        }

        if (strcmp(cmd, "outputs") == 0 && i + 1 == argc) {
                _cleanup_secret_ Secret *token = secret_new_string(argv[i]);

                r = outputs_write_all(o, token, now_realtime());
                print_outputs(o, r);
                return r < 0 ? 1 : 0;
        }

        if (strcmp(cmd, "loop") == 0 && i < argc) {
                for (unsigned long round = 0;; round++) {
                        for (int k = i; k < argc; k++) {
                                _cleanup_secret_ Secret *token = secret_new_string(argv[k]);

                                r = outputs_write_all(o, token, now_realtime());
                                if (r < 0) {
                                        fprintf(stderr, "write failed: %s\n", strerror(-r));
                                        return 1;
                                }
                        }
                        if (round == 0) {
                                printf("READY\n");
                                fflush(stdout);
                        }
                }
        }

        fprintf(stderr,
                "usage: %s replace PATH CONTENT_FILE [MODE] | outputs OPTS TOKEN | loop OPTS TOKEN... | cleanup OPTS\n",
                argv[0]);
        return 64;
}
