/* The parser state config.c collects and config-build.c validates. Only config*.c include
 * this file; everyone else sees a parsed Config through config.h. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/un.h>

#include "base/macro.h"
#include "shared/config-env.h"
#include "shared/config.h"

#define SOCKET_PATH_MAX (sizeof(((struct sockaddr_un *) NULL)->sun_path) - 1)

typedef enum DaemonKey {
        DAEMON_SOCKET,
        DAEMON_STATE_DIR,
        DAEMON_LOG_LEVEL,
        DAEMON_NOTIFY_COMMAND,
        DAEMON_HTTP_TIMEOUT,
        DAEMON_METRICS_FILE,
        DAEMON_STATE_PROTECTION,
        _DAEMON_KEY_MAX,
} DaemonKey;

typedef enum ProfileKey {
        PROFILE_TENANT,
        PROFILE_AUTHORITY_HOST,
        PROFILE_CLIENT_ID,
        PROFILE_SERVER_ID,
        PROFILE_REFRESH_BEFORE,
        PROFILE_TOKEN_FILE,
        PROFILE_SPARK_PROPERTIES,
        PROFILE_KUBECONFIG,
        PROFILE_KUBECONFIG_CONTEXT,
        PROFILE_CA_FILE,
        PROFILE_KUBECONFIG_OUTPUT,
        PROFILE_KUBECONFIG_EXEC_API_VERSION,
        PROFILE_AUTH,
        PROFILE_REDIRECT_PORT,
        PROFILE_CLIENT_SECRET_FILE,
        PROFILE_CLIENT_CERTIFICATE,
        PROFILE_CLIENT_CERTIFICATE_PASSWORD_FILE,
        PROFILE_MANAGED_IDENTITY_CLIENT_ID,
        PROFILE_MANAGED_IDENTITY_OBJECT_ID,
        PROFILE_MANAGED_IDENTITY_RESOURCE_ID,
        PROFILE_IMDS_ENDPOINT,
        PROFILE_FEDERATED_TOKEN_FILE,
        PROFILE_AZURE_CONFIG_DIR,
        PROFILE_AZ_COMMAND,
        _PROFILE_KEY_MAX,
} ProfileKey;

/* One key's value as written, and where. */
typedef struct Setting {
        char *value; /* NULL: not given */
        unsigned line;
} Setting;

typedef struct RawProfile {
        char *name;
        unsigned line;
        Setting settings[_PROFILE_KEY_MAX]; /* all but spark_properties */
        Setting *spark_properties;
        size_t n_spark_properties;
} RawProfile;

typedef enum SectionKind {
        SECTION_NONE, /* before the first header */
        SECTION_DAEMON,
        SECTION_PROFILE,
        SECTION_IGNORED, /* a header that was already reported: its keys would only add noise */
} SectionKind;

typedef struct Problem {
        unsigned line;
        size_t seq; /* keeps problems of one line in the order they were found */
        char *text;
} Problem;

typedef struct Parser {
        const char *path;
        const ConfigEnv *env;

        const char *text;
        size_t len, pos;
        unsigned line; /* of the line inih is working on: inih is built without handler line numbers */

        SectionKind section;
        RawProfile *profile; /* when section == SECTION_PROFILE */
        Setting daemon[_DAEMON_KEY_MAX];
        RawProfile **profiles;
        size_t n_profiles;
        bool saw_other_header; /* any but [daemon], also a refused one: "no profile" would be noise */

        Problem *problems;
        size_t n_problems;
        bool oom;
} Parser;

extern const char *const config_profile_keys[_PROFILE_KEY_MAX];

/* config-keys.c */
_printf_(3, 4) void config_problem(Parser *p, unsigned line, const char *format, ...);

/* config-build.c */
int config_strdup_to(Parser *p, const char *s, char **ret);
void config_build_daemon(Parser *p, Config *c);
ProfileConfig *config_build_profile(Parser *p, const RawProfile *rp, bool default_token_file);
void config_build_check_outputs(Parser *p, Config *c);
ProfileConfig *config_profile_free(ProfileConfig *pc);
