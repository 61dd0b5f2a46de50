/* The spark.properties edit: replace the token's value in java.util.Properties syntax while
 * keeping every other byte. Pure. */
#pragma once

#include <stddef.h>

#include "secret.h"

#define PROPS_TOKEN_KEY "spark.kubernetes.authenticate.submission.oauthToken"
#define PROPS_MASTER_KEY "spark.master"

/* Every logical line whose key is PROPS_TOKEN_KEY gets token as its value; a missing key is
 * appended in the file's own line-ending style. */
int props_replace_token(const char *in, size_t len, const Secret *token, Secret **ret);

/* A new file: the token line, and "spark.master k8s://<server>" when server is not NULL. */
int props_new_file(const Secret *token, const char *k8s_server, Secret **ret);

/* Escape a value as Properties.store would (leading space, \ = : # ! and controls, non-ASCII
 * as \uXXXX), so that Properties.load reads back exactly value. malloc'd. */
int props_escape_value(const char *value, size_t len, char **ret, size_t *ret_len);
