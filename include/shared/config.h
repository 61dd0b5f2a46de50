/* The configuration file: inih callbacks build a Config; validation names file:line.
 * config_parse() is pure: text and environment in, Config and a list of problems out. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "base/secret.h"
#include "base/util.h"

#define AKS_DEFAULT_AUTHORITY_HOST "https://login.microsoftonline.com"
#define AKS_DEFAULT_CLIENT_ID "80faf920-1908-4b52-b5ef-a8e7bedfc67a"
#define AKS_DEFAULT_SERVER_ID "6dae42f8-4368-4678-94ff-3960e28e3630"
#define AKS_DEFAULT_REFRESH_BEFORE (10 * USEC_PER_MINUTE)
#define AKS_DEFAULT_HTTP_TIMEOUT (30 * USEC_PER_SEC)
#define AKS_DEFAULT_TOKEN_FILE "~/.kube/oauthToken"
#define AKS_DEFAULT_IMDS_ENDPOINT "http://169.254.169.254"
#define AKS_ARC_KEY_DIR "/var/opt/azcmagent/tokens"

/* How a profile gets its token (`auth =`): a person signs in once (device code, browser), or
 * nobody does and the daemon presents a credential for every token (the unattended kinds). */
typedef enum AuthKind {
        AUTH_DEVICE_CODE,
        AUTH_BROWSER,
        AUTH_CLIENT_SECRET,
        AUTH_CLIENT_CERTIFICATE,
        AUTH_MANAGED_IDENTITY,
        AUTH_WORKLOAD_IDENTITY,
        AUTH_AZURECLI, /* the person's own `az login`: az hands out each token */
        _AUTH_KIND_MAX,
        _AUTH_KIND_INVALID = -1,
} AuthKind;

const char *auth_kind_to_string(AuthKind k);
AuthKind auth_kind_from_string(const char *s);
/* No person and no refresh token: the credential is presented for every token. */
bool auth_kind_is_unattended(AuthKind k);

/* What seals the state file's secrets (`[daemon] state_protection =`). */
typedef enum StateProtection {
        STATE_PROTECTION_AUTO, /* systemd-creds if the credential is there, else keyring, else none */
        STATE_PROTECTION_SYSTEMD_CREDS,
        STATE_PROTECTION_KEYRING,
        STATE_PROTECTION_NONE,
        _STATE_PROTECTION_MAX,
        _STATE_PROTECTION_INVALID = -1,
} StateProtection;

const char *state_protection_to_string(StateProtection p);
StateProtection state_protection_from_string(const char *s);

/* Which local token service a managed identity asks (from the environment, as MSAL decides). */
typedef enum MsiKind {
        MSI_IMDS,        /* an Azure VM: imds_endpoint */
        MSI_APP_SERVICE, /* IDENTITY_ENDPOINT and IDENTITY_HEADER */
        MSI_ARC,         /* IDENTITY_ENDPOINT and IMDS_ENDPOINT: Azure Arc's agent */
} MsiKind;

typedef struct ProfileConfig {
        char *name;
        unsigned line; /* of the [profile NAME] header */
        char *tenant;
        char *authority_host; /* no trailing slash */
        char *client_id;
        char *server_id;
        usec_t refresh_before;
        char *token_file;        /* expanded; NULL = no token file */
        char **spark_properties; /* expanded paths */
        size_t n_spark_properties;
        char *kubeconfig;         /* expanded; NULL = none */
        char *kubeconfig_context; /* the context of kubeconfig this profile means; NULL = its current-context */
        char *kubeconfig_output;  /* expanded; NULL = none (needs kubeconfig) */
        const char *kubeconfig_exec_api_version; /* KUBECONFIG_EXEC_V1 (default) or _V1BETA1 */
        char *ca_file;                           /* expanded; NULL = system trust only */

        AuthKind auth;
        unsigned redirect_port;   /* browser: 0 = any free port */
        char *client_secret_file; /* expanded */
        char *client_certificate; /* expanded: PEM with certificate and key */
        char *client_certificate_password_file;
        char *managed_identity_client_id; /* at most one of the three */
        char *managed_identity_object_id;
        char *managed_identity_resource_id;
        MsiKind msi_kind;
        char *msi_endpoint;         /* IMDS: scheme://host[:port]; App Service, Arc: the token URL */
        Secret *identity_header;    /* App Service's IDENTITY_HEADER, else NULL */
        char *arc_key_dir;          /* Arc: where its challenge files must be */
        char *federated_token_file; /* expanded */
        char *azure_config_dir;     /* azurecli: expanded; NULL = az's own default */
        char *az_command;           /* azurecli: as written ("az" by default); resolved on PATH at start */
} ProfileConfig;

typedef struct Config {
        char *path;           /* the file it was read from */
        char *socket_path;    /* expanded; NULL when no default could be made (no XDG_RUNTIME_DIR) */
        char *state_dir;      /* expanded */
        int log_level;        /* LOG_ERR ... LOG_DEBUG */
        char *notify_command; /* NULL = none */
        usec_t http_timeout;  /* total time for one HTTP exchange */
        char *metrics_file;   /* expanded; NULL = none */
        StateProtection state_protection;
        ProfileConfig **profiles;
        size_t n_profiles;
} Config;

/* What the defaults and the expansion depend on, gathered once by the caller. */
/* No token, however short the answer says it lives, is refreshed on schedule more often. */
#define CONFIG_REFRESH_FLOOR (30 * USEC_PER_SEC)

typedef struct ConfigEnv {
        const char *home;                    /* the user's home (never NULL) */
        const char *xdg_config_home;         /* may be NULL */
        const char *xdg_runtime_dir;         /* may be NULL */
        const char *xdg_state_home;          /* may be NULL */
        const char *configuration_directory; /* $CONFIGURATION_DIRECTORY, may be NULL */
        const char *state_directory;         /* $STATE_DIRECTORY, may be NULL */
        const char *runtime_directory;       /* $RUNTIME_DIRECTORY, may be NULL */
        const char *metrics_file;            /* $AKSSPARK_TOKEND_METRICS_FILE (wins over metrics_file), may be NULL */
        /* Defaults of the unattended identities (all may be NULL): */
        const char *azure_federated_token_file;
        const char *azure_client_id;
        const char *azure_tenant_id;
        const char *azure_authority_host;
        const char *identity_endpoint; /* App Service, Arc */
        const char *identity_header;   /* App Service */
        const char *imds_endpoint;     /* Arc */
        const char *arc_key_dir;       /* Arc's key files; NULL: /var/opt/azcmagent/tokens (tests move it) */
        const char *azure_config_dir;  /* $AZURE_CONFIG_DIR: az's state (azurecli) */
        /* Scheduled refreshes at least this far apart: CONFIG_REFRESH_FLOOR, or the test aid
         * $AKSSPARK_TEST_REFRESH_FLOOR_SEC (0..3600 s; anything else is ignored). */
        usec_t refresh_floor;
        env_lookup_fn lookup; /* for ${VAR}; NULL = nothing is set */
        void *userdata;
} ConfigEnv;

/* Problems found while reading, each "file:line: what is wrong". */
typedef struct ConfigErrors {
        char **lines;
        size_t n;
} ConfigErrors;

void config_errors_clear(ConfigErrors *e);

/* Parse text (len bytes, need not be NUL-terminated). On success (*ret set) returns 0 and
 * reterr_errors is empty. On bad configuration returns -EINVAL with every problem in
 * reterr_errors, sorted by line; -ENOMEM. reterr_errors is cleared first. A line holds at most
 * 198 bytes (inih's 200-byte buffer less "\n\0"); a longer one is a problem, never cut.
 * Leading whitespace is ignored, so there are no continuation lines: a repeated key
 * (spark_properties) is given once per line. */
int config_parse(const char *path, const char *text, size_t len, const ConfigEnv *env, Config **ret,
                 ConfigErrors *reterr_errors);

Config *config_free(Config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Config *, config_free);

/* Whether a [profile NAME] section accepts key: what `aksspark-tokenctl init` may write. */
bool config_profile_key_is_known(const char *key);

const ProfileConfig *config_find_profile(const Config *c, const char *name);
/* The profile a request without "profile" means: "default", or the only one. NULL if neither. */
const ProfileConfig *config_default_profile(const Config *c);

/* Who the tokens are for: a sign-in made for one identity is never used for another. This is the
 * one place that says what an identity is; extend it here (and in profile_identity_equal()). */
typedef struct ProfileIdentity {
        const char *tenant;
        const char *client_id;
        const char *server_id; /* NULL: not known (the state file does not record it) */
        const char *authority_host;
        const char *auth;             /* "device_code", ...; NULL: device_code (an older state file) */
        const char *managed_identity; /* the managed_identity_* selector; NULL: the system-assigned one */
        const char *azure_config_dir; /* azurecli: whose az sign-in; NULL: az's own default */
} ProfileIdentity;

ProfileIdentity profile_config_identity(const ProfileConfig *p);
/* The same identity: tenant, client and authority present and equal, the same way of signing
 * in, and the server the same where both sides know it. azurecli names no client (az is its
 * own) and perhaps no tenant: there both are equal when both are absent, and whose az sign-in
 * (azure_config_dir) must be the same. */
bool profile_identity_equal(const ProfileIdentity *a, const ProfileIdentity *b);
/* Reload keeps a profile's sign-in only for the same identity. */
bool profile_config_same_identity(const ProfileConfig *a, const ProfileConfig *b);

/* "<server_id>/.default openid profile offline_access" (malloc'd) */
char *profile_config_scope(const ProfileConfig *p);

/* "<server_id>/.default": what the unattended kinds ask for (malloc'd). */
char *profile_config_app_scope(const ProfileConfig *p);

/* One line for --check-config: name, tenant, outputs. malloc'd. */
char *profile_config_summary(const ProfileConfig *p);
