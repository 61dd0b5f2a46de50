/* What request handling may ask of the daemon: the one interface through which the socket side
 * reaches the owner of the profiles (dbus-broker's driver.c/BROKER() pattern, made explicit).
 * The manager fills it in and hands it down; nothing below the manager includes manager.h. */
#pragma once

#include <stddef.h>

#include "config.h"
#include "profile.h"

typedef struct RequestContext {
        /* The profile called name, or the default one for a NULL name; NULL when there is none. */
        Profile *(*find_profile)(void *userdata, const char *name);
        /* Every profile, in configuration order; valid until the next reload. */
        size_t (*list_profiles)(void *userdata, Profile *const **ret);
        /* Re-read the configuration (manager_reload()); ret_errors as there. */
        int (*reload)(void *userdata, ConfigErrors *ret_errors);
        void *userdata;
} RequestContext;
