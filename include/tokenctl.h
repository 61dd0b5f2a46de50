/* The commands of aksspark-tokenctl that need no daemon to start (init) or look at everything
 * around it (doctor); each in a file of its own, called from tokenctl.c's command table. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define TOKENCTL_MAX_CONTEXTS 64

typedef struct TokenctlSetupArgs {
        const char *config;                    /* --config; NULL: the daemon's default path */
        const char *kubeconfig;                /* --kubeconfig; NULL: $KUBECONFIG's first file, ~/.kube/config */
        char *contexts[TOKENCTL_MAX_CONTEXTS]; /* --context, repeatable */
        size_t n_contexts;
        bool force;
        const char *socket;         /* --socket; NULL: the configuration's, else the client's default */
        const char *default_socket; /* the client's default socket path */
        const char *profile;        /* --profile; NULL: every profile */
} TokenctlSetupArgs;

/* An option of init or doctor: 'c' --config, 'k' --kubeconfig, 'x' --context, 'f' --force (value
 * NULL). -E2BIG past TOKENCTL_MAX_CONTEXTS contexts. */
int tokenctl_setup_option(TokenctlSetupArgs *a, char option, const char *value);
/* Only --config among them was given (doctor takes no other). */
bool tokenctl_setup_only_config(const TokenctlSetupArgs *a);

/* Exit statuses: 0 written; 1 nothing to write or cannot write; 64 usage. */
int tokenctl_init(const TokenctlSetupArgs *a);

/* Exit statuses: 0 nothing failed; 1 a check failed. */
int tokenctl_doctor(const TokenctlSetupArgs *a);
