/* The Unix socket: listener (or the one systemd passed), connections, line framing, the
 * SO_PEERCRED check, answers in order, and requests that wait on a profile. */
#pragma once

#include <systemd/sd-event.h>

#include "macro.h"
#include "util.h"

typedef struct Manager Manager;
typedef struct Server Server;

#define SERVER_MAX_CONNECTIONS 4096

/* Listen on path (0600; a stale socket file is replaced only when nothing answers on it), or
 * on the socket systemd passed (sd_listen_fds) when there is one. */
int server_new(Manager *m, const char *path, Server **ret);
Server *server_free(Server *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Server *, server_free);

const char *server_path(const Server *s);
unsigned server_connections(const Server *s);
