/* The configuration's value checks (config-values.c): pure, one string in, a verdict out. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The key in keys one typo away from name (edit distance < 3, ignoring case), else NULL. */
const char *config_closest_key(const char *name, const char *const *keys, size_t n);
/* Drop empty and "." components in place; "/" stays "/". ".." is kept. */
void config_path_simplify(char *path);
/* 8-4-4-4-12 hex digits. */
bool config_is_guid(const char *s);
/* A tenant ID (GUID), a domain such as contoso.onmicrosoft.com, or "organizations". */
bool config_tenant_is_valid(const char *s);
/* The n bytes of a (what follows the scheme) are host[:port]: a name, or an IPv6 [address]. */
bool config_authority_is_valid(const char *a, size_t n);
/* The authority names 127.0.0.1, localhost or [::1] (where plain http:// is allowed). */
bool config_authority_is_loopback(const char *a, size_t n);
/* Non-empty, printable ASCII without spaces. */
bool config_is_visible_ascii(const char *s);
