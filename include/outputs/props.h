/* The spark.properties edit: replace the token's value in java.util.Properties syntax while
 * keeping every other byte. Pure. */
#pragma once

#include <stddef.h>

#include "base/secret.h"

#define PROPS_TOKEN_KEY "spark.kubernetes.authenticate.submission.oauthToken"
#define PROPS_MASTER_KEY "spark.master"

/* Every logical line whose key (unescaped, as Properties.load does) is PROPS_TOKEN_KEY gets
 * token as its value; all other bytes stay (comments, order, separators, padding, line ends).
 * A continued token line becomes one physical line ending as the logical line did; a token
 * line without any separator gets '='. A missing key is appended as "<key> <value>" in the
 * file's own line-ending style (its first line end; LF when it has none), after ending an
 * unterminated last line or an open continuation. The file is read as Spark reads it (UTF-8
 * Reader): a UTF-8 BOM stays part of the first key, so a token line right after a BOM is not
 * ours and the key is appended (Spark would not see it under its name either).
 * in may be NULL when len is 0 (a missing or empty file). -EINVAL: token is not UTF-8. */
int props_replace_token(const char *in, size_t len, const Secret *token, Secret **ret);

/* A new file: "<key> <token>\n", then "spark.master k8s://<server>\n" when server is not NULL
 * (the URL as is; only what Properties.load would misread is escaped). */
int props_new_file(const Secret *token, const char *k8s_server, Secret **ret);

/* Escape a value as Properties.store would (leading space, \ = : # ! and controls, non-ASCII
 * as \uXXXX, astral chars as surrogate pairs), so that Properties.load reads back exactly
 * value. -EINVAL when value is not UTF-8. malloc'd; wipe it if value was a secret. */
int props_escape_value(const char *value, size_t len, char **ret, size_t *ret_len);
