/* The API server of the kubeconfig's current context (current-context -> context -> cluster
 * -> server), read with libyaml. Pure. */
#pragma once

#include <stddef.h>

/* Only the first YAML document is read; YAML nulls count as unset. -ENOENT: no (or an empty)
 * current-context, or it names no context, or the context names no cluster that is there;
 * -ENODATA: the cluster has no server; -EBADMSG: not YAML, not a kubeconfig (wrong types), or
 * the context or cluster name is listed twice (kubectl refuses that too); -ENOMEM. */
int kubeconfig_current_server(const char *text, size_t len, char **ret_server);
