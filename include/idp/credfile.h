/* Files holding a credential: a client secret, a certificate's private key, its password, a
 * federated token. Read when a request needs them, into a Secret; never cached, never copied. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "base/secret.h"
#include "shared/config.h"

#define CREDFILE_MAX (64 * 1024)

/* Read path whole (at most max bytes, -EFBIG beyond). private_only: refuse with -EPERM a file
 * that its group or others may read, as ssh does with a key. Not a regular file: -EBADFD.
 * trim: drop trailing whitespace (a secret written with echo ends in a newline). */
int credfile_read(const char *path, size_t max, bool private_only, bool trim, Secret **ret);

/* The problems with a profile's credential files, for --check-config: each a line saying
 * what is wrong and what to do, appended to errors. A file that does not exist (yet) is none. Reads the files (and parses a certificate)
 * but prints nothing. Returns the number of problems, or -ENOMEM. */
int credfile_check_profile(const ProfileConfig *p, ConfigErrors *errors);
