/* Test tool: props-edit [--server URL] TOKEN_FILE IN OUT [IN OUT]...
 * Writes props_replace_token(IN) to OUT for each pair (props_new_file when IN does not exist),
 * with the token read raw from TOKEN_FILE. Many pairs per run keep the random batch fast. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "outputs/props.h"

static int write_file(const char *path, const char *data, size_t len) {
        FILE *f = fopen(path, "we");

        if (!f)
                return -errno;
        if (fwrite(data, 1, len, f) != len) {
                fclose(f);
                return -EIO;
        }
        return fclose(f) == 0 ? 0 : -errno;
}

int main(int argc, char **argv) {
        _cleanup_free_ char *token_text = NULL;
        _cleanup_secret_ Secret *token = NULL;
        const char *server = NULL;
        size_t token_len;
        int i = 1, r;

        if (argc > 2 && strcmp(argv[1], "--server") == 0) {
                server = argv[2];
                i = 3;
        }
        if (argc - i < 3 || (argc - i - 1) % 2 != 0) {
                fprintf(stderr, "usage: %s [--server URL] TOKEN_FILE IN OUT [IN OUT]...\n", argv[0]);
                return 64;
        }

        r = read_file_full(argv[i], 1 << 20, &token_text, &token_len);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", argv[i], strerror(-r));
                return 1;
        }
        token = secret_new(token_text, token_len);
        if (!token)
                return 1;

        for (i++; i + 1 < argc; i += 2) {
                _cleanup_free_ char *in = NULL;
                _cleanup_secret_ Secret *out = NULL;
                size_t len;

                r = read_file_full(argv[i], 64 << 20, &in, &len);
                if (r == -ENOENT)
                        r = props_new_file(token, server, &out);
                else if (r >= 0)
                        r = props_replace_token(in, len, token, &out);
                if (r >= 0)
                        r = write_file(argv[i + 1], secret_reveal(out), secret_len(out));
                if (r < 0) {
                        fprintf(stderr, "%s: %s\n", argv[i], strerror(-r));
                        return 1;
                }
        }
        return 0;
}
