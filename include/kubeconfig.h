/* The API server of the kubeconfig's current context (current-context -> context -> cluster
 * -> server), read with libyaml. Pure. */
#pragma once

#include <stddef.h>

/* -ENOENT: no current-context, or it names no context or cluster; -ENODATA: the cluster has
 * no server; -EBADMSG: not YAML or not a kubeconfig. */
int kubeconfig_current_server(const char *text, size_t len, char **ret_server);
