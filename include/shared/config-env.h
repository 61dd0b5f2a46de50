/* Where the configuration comes from: this process's environment, read once at start by main.c
 * and handed to the manager for reloads, and the default paths it implies (pure, over a
 * ConfigEnv). Reading the configuration file: config-load.h. */
#pragma once

#include "shared/config.h"

/* Look name up in env (an env_lookup_fn for path_expand(); userdata is the ConfigEnv). ${HOME}
 * falls back to env->home. Pure. */
const char *config_env_lookup(const char *name, void *userdata);
/* The first ${NAME} in s that env does not set, copied into buf (of size bytes); NULL when
 * every one is set. Pure. */
const char *config_env_first_unset(const ConfigEnv *env, const char *s, char *buf, size_t size);

/* $CONFIGURATION_DIRECTORY/config.ini, else $XDG_CONFIG_HOME/aksspark-tokend/config.ini,
 * else ~/.config/aksspark-tokend/config.ini. */
int config_default_path(const ConfigEnv *env, char **ret);

/* Fill env from this process's environment and password entry. Strings point into the
 * environment, except home, which is owned by *ret_home_owner (free it). */
int config_env_from_process(ConfigEnv *env, char **ret_home_owner);

/* The socket's default: $XDG_RUNTIME_DIR/aksspark-tokend.sock, else $RUNTIME_DIRECTORY's; *ret
 * NULL when neither is set. */
int config_default_socket_path(const ConfigEnv *env, char **ret);
/* $STATE_DIRECTORY, else $XDG_STATE_HOME/aksspark-tokend, else ~/.local/state/aksspark-tokend. */
int config_default_state_dir(const ConfigEnv *env, char **ret);
