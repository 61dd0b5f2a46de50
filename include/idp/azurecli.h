/* auth = azurecli: the person's own `az login`. A token source behind the seam in
 * token-source.h that runs `az account get-access-token` as a child, off the loop, for every
 * token: az answers from its own cache and refreshes it itself. Nothing of az's is kept.
 *
 * The child has no stdin, the daemon's environment plus AZURE_CONFIG_DIR when configured, its
 * own process group (killed whole at the time limit), and its output capped. */
#pragma once

#include "base/macro.h"
#include "idp/aad.h"
#include "idp/token-source.h"
#include "shared/config.h"

#define AZURECLI_TIMEOUT (30 * USEC_PER_SEC)
#define AZURECLI_OUTPUT_MAX (256 * 1024)

typedef struct AzureCli AzureCli;

typedef struct AzureCliCallbacks {
        /* Called once, from the loop, as the last thing the run does (the callee may free it).
         * result 0: token is the new token (take what you keep), sent when az was started.
         * -ENOKEY: az says a person must sign in again (`az login`). -EIO: anything else, worth
         * a retry. error says why (az's own first message line when it gave one): never a token. */
        void (*on_done)(int result, AadToken *token, usec_t sent, const char *error, void *userdata);
        void *userdata;
} AzureCliCallbacks;

/* Start one run of az. ctx, cfg, name and callbacks must outlive it. */
int azurecli_acquire(const TokenSourceContext *ctx, const ProfileConfig *cfg, const char *name,
                     const AzureCliCallbacks *callbacks, AzureCli **ret);
/* Stops it (a running az is killed and reaped from the loop later); no callback runs. NULL-safe. */
AzureCli *azurecli_free(AzureCli *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(AzureCli *, azurecli_free);

/* For --check-config: whether the profile's az_command can be run (found on PATH, executable);
 * a problem line appended to errors when not. Returns the number of problems, or -ENOMEM. */
int azurecli_check_profile(const ProfileConfig *p, ConfigErrors *errors);
