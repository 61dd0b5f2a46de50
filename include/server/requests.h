/* Request handling: each operation on the socket -> its answer (requests.c), and the one
 * interface through which it reaches the owner of the profiles, RequestContext (dbus-broker's
 * driver.c/BROKER() pattern, made explicit). The manager fills the context in and wires
 * requests_handle_line() into the server as its connections' line handler; nothing below the
 * manager includes manager.h, and the connection never calls into this module except through
 * that callback. */
#pragma once

#include <stddef.h>
#include <systemd/sd-event.h>

#include "profile/profile.h"
#include "server/connection.h"
#include "shared/config.h"

/* refresh and check answer `timeout` after this (the refresh goes on). */
#define REQUEST_WAIT_TIMEOUT (110 * USEC_PER_SEC)

typedef void (*reload_done_fn)(int result, const ConfigErrors *errors, void *userdata);

typedef struct RequestContext {
        sd_event *event; /* for the wait timeouts */
        /* The profile called name, or the default one for a NULL name; NULL when there is none. */
        Profile *(*find_profile)(void *userdata, const char *name);
        /* Every profile, in configuration order; valid until the next reload. */
        size_t (*list_profiles)(void *userdata, Profile *const **ret);
        /* Re-read the configuration (manager_request_reload()): done runs later, on the loop, once
         * the reload was applied or failed; errors (borrowed) are the configuration's problems.
         * *ret_waiter identifies the request for reload_cancel (the connection went away), after
         * which done never runs. Returns < 0 when the reload could not be started (done never
         * runs). */
        int (*reload)(void *userdata, reload_done_fn done, void *done_userdata, void **ret_waiter);
        void (*reload_cancel)(void *userdata, void *waiter);
        /* The Prometheus text of every profile and the daemon (metrics.h), malloc'd. */
        int (*metrics)(void *userdata, char **ret_text);
        void *userdata;
} RequestContext;

/* A ConnectionHandler's on_line, with userdata the RequestContext: answer one request line. */
void requests_handle_line(Connection *c, const char *line, size_t len, void *userdata);
