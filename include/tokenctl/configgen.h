/* `aksspark-tokenctl init`'s core: the contexts of a kubeconfig in, the profiles of a
 * config.ini out (and the contexts it skipped, with why). Pure: no I/O, no clock, no globals. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "shared/kubeconfig.h"

/* Whether the daemon's configuration parser accepts a profile key (config_profile_key_is_known):
 * a key is written only when the daemon this client belongs to can read it. */
typedef bool (*configgen_key_known_fn)(const char *key);

typedef struct ConfiggenOptions {
        const char *kubeconfig; /* the source file as the profiles name it ("~/.kube/config") */
        char *const *only;      /* --context names; n_only == 0: every context */
        size_t n_only;
        configgen_key_known_fn key_known;
} ConfiggenOptions;

typedef struct ConfiggenProfile {
        char *name;
        const char *context; /* into the KubeconfigContexts given */
        const char *auth;    /* "device_code", "browser", ...: static */
        char *section;       /* "[profile NAME]\n...": the profile's lines */
        char *note;          /* what the person still has to do, or NULL */
} ConfiggenProfile;

typedef struct ConfiggenSkip {
        const char *context; /* into the KubeconfigContexts given */
        char *why;
} ConfiggenSkip;

typedef struct Configgen {
        ConfiggenProfile *profiles;
        size_t n_profiles;
        ConfiggenSkip *skipped;
        size_t n_skipped;
} Configgen;

/* One profile per Azure AD context (all, or those in only), named after the context made a valid
 * profile name (unique; the current context's is "default"); every other context in skipped.
 * -ENOENT with *reterr_name set (into options->only) when a name in only is no context of the
 * file; -ENOMEM. */
int configgen_plan(const KubeconfigContexts *contexts, const ConfiggenOptions *options, Configgen *ret,
                   const char **reterr_name);

/* Move profile i to the skipped list with why (the shell's own validation refused it). */
int configgen_skip_profile(Configgen *g, size_t i, const char *why);

/* The whole file: a header comment naming source, then every profile. malloc'd, NULL on ENOMEM. */
char *configgen_text(const Configgen *g, const char *source);

void configgen_done(Configgen *g);

/* kubelogin's --environment (its Azure SDK cloud names, any case) -> authority_host.
 * NULL environment: AzurePublicCloud, kubelogin's default. NULL for a cloud not known. */
const char *configgen_authority_host(const char *environment);

/* kubelogin's --login -> auth. NULL login: devicecode, kubelogin's default. -EOPNOTSUPP with
 * *reterr_why for the sign-ins that have no match (azurecli, ropc, anything unknown). */
int configgen_auth(const char *login, bool certificate, const char **ret_auth, const char **reterr_why);

/* A context name made a valid profile name ([A-Za-z0-9_.-], at most CONFIGGEN_NAME_MAX bytes,
 * never "." or ".."). Returns buf. */
#define CONFIGGEN_NAME_MAX 64
char *configgen_profile_name(const char *context, char buf[static CONFIGGEN_NAME_MAX + 1]);
