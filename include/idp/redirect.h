/* The browser's visit to the loopback redirect (http://127.0.0.1:PORT/?code=..&state=..): parse
 * the request head it sends, and the page it gets back. Pure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "base/macro.h"
#include "base/secret.h"

#define REDIRECT_HEAD_MAX (16 * 1024) /* a code is ~1-2 KB; browsers send a few headers */

typedef enum RedirectKind {
        REDIRECT_CODE,  /* code and state */
        REDIRECT_ERROR, /* error (and error_description), state */
        REDIRECT_OTHER, /* a GET of another path (/favicon.ico) or without code or error */
} RedirectKind;

typedef struct Redirect {
        RedirectKind kind;
        Secret *code;
        char *state;             /* NULL if absent */
        char *error;             /* snake_case, as sent */
        char *error_description; /* first line, control characters replaced, capped */
} Redirect;

void redirect_clear(Redirect *r);

/* buf holds what the browser has sent so far. -EAGAIN: the head is not complete yet;
 * -E2BIG: longer than REDIRECT_HEAD_MAX without an end; -EBADMSG: not an HTTP/1.x GET or a
 * malformed query; 0 with ret filled. ret_head_len: where the head ends (may be NULL). */
int redirect_parse(const char *buf, size_t len, Redirect *ret, size_t *ret_head_len);

/* A complete HTTP/1.1 answer with a small HTML page: signed in, or what went wrong. */
char *redirect_answer(bool ok, const char *what);
