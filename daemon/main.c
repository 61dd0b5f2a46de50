/* aksspark-tokend: arguments, the root check, configuration, then the manager's loop. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "base/json-wipe.h"
#include "base/log.h"
#include "idp/azurecli.h"
#include "idp/credfile.h"
#include "loop/worker.h"
#include "manager.h"
#include "shared/config-env.h"
#include "shared/config-load.h"
#include "shared/config.h"
#include "version.h"

/* Exit codes (sysexits.h values, as systemd units expect them). */
#define EXIT_USAGE 64
#define EXIT_NOPERM 77
#define EXIT_CONFIG 78

static void help(void) {
        printf("Usage: aksspark-tokend [OPTIONS]\n"
               "\n"
               "Keeps an Azure AD access token for Spark on AKS fresh: signs in once with the\n"
               "device-code flow, refreshes before expiry, rewrites the token file and every\n"
               "configured spark.properties, and answers aksspark-tokenctl on a Unix socket.\n"
               "\n"
               "  --config PATH    configuration file (default: $CONFIGURATION_DIRECTORY/config.ini,\n"
               "                   else $XDG_CONFIG_HOME/aksspark-tokend/config.ini)\n"
               "  --check-config   validate the configuration, print one line per profile, exit\n"
               "  --allow-root     run as root (tokens belong to a person: normally refused)\n"
               "  --help           show this help\n"
               "  --version        show the version\n"
               "\n"
               "Exit status: 0 stopped cleanly, 1 failure, 64 usage, 77 refused to run as root,\n"
               "78 configuration error. See aksspark-tokend(8).\n");
}

typedef struct Arguments {
        const char *config_path; /* NULL: the default path */
        bool check_config;
        bool allow_root;
} Arguments;

/* 1: run with *ret; 0: done (help or version printed); -EINVAL: a usage error, already printed. */
static int parse_argv(int argc, char *argv[], Arguments *ret) {
        enum { ARG_CONFIG = 0x100, ARG_CHECK_CONFIG, ARG_ALLOW_ROOT, ARG_VERSION };
        static const struct option options[] = {
                { "config", required_argument, NULL, ARG_CONFIG },
                { "check-config", no_argument, NULL, ARG_CHECK_CONFIG },
                { "allow-root", no_argument, NULL, ARG_ALLOW_ROOT },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        Arguments args = {};
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_CONFIG:
                        args.config_path = optarg;
                        break;
                case ARG_CHECK_CONFIG:
                        args.check_config = true;
                        break;
                case ARG_ALLOW_ROOT:
                        args.allow_root = true;
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("aksspark-tokend %s\n", PACKAGE_VERSION);
                        return 0;
                default:
                        fprintf(stderr, "Try 'aksspark-tokend --help'.\n");
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "aksspark-tokend: unexpected argument '%s'. Try 'aksspark-tokend --help'.\n",
                        argv[optind]);
                return -EINVAL;
        }
        *ret = args;
        return 1;
}

/* Everything after the arguments; returns the exit status. */
static int run(const Arguments *args) {
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_free_ char *home = NULL, *default_path = NULL;
        const char *config_path = args->config_path;
        bool check_config = args->check_config, allow_root = args->allow_root;
        ConfigErrors errors = {};
        unsigned hung;
        ConfigEnv env;
        int r;

        log_open();
        json_set_alloc_funcs(malloc, json_wiping_free);

        if (geteuid() == 0 && !allow_root && !check_config) {
                fprintf(stderr, "aksspark-tokend: refusing to run as root: tokens belong to a person and are written "
                                "into that person's home. Run it as that user (systemctl --user start aksspark-tokend, "
                                "or the aksspark-tokend@USER unit on a shared host), or pass --allow-root.\n");
                return EXIT_NOPERM;
        }

        r = config_env_from_process(&env, &home);
        if (r < 0) {
                fprintf(stderr, "aksspark-tokend: cannot find the home directory of uid %u: %s. Set HOME.\n",
                        (unsigned) getuid(), strerror(-r));
                return EXIT_CONFIG;
        }
        if (!config_path) {
                r = config_default_path(&env, &default_path);
                if (r < 0) {
                        fprintf(stderr, "aksspark-tokend: cannot work out the configuration path: %s. Use --config.\n",
                                strerror(-r));
                        return EXIT_CONFIG;
                }
                config_path = default_path;
        }

        r = config_load(config_path, &env, &config, &errors);
        if (r < 0) {
                for (size_t i = 0; i < errors.n; i++)
                        fprintf(stderr, "%s\n", errors.lines[i]);
                if (errors.n == 0)
                        fprintf(stderr, "%s: cannot load the configuration: %s\n", config_path, strerror(-r));
                config_errors_clear(&errors);
                return EXIT_CONFIG;
        }

        if (check_config) {
                _cleanup_(config_errors_clear) ConfigErrors problems = {};

                /* The credential files are the one part of a configuration that needs I/O to
                 * judge: readable only by their owner, and a certificate that parses. */
                for (size_t i = 0; i < config->n_profiles; i++)
                        if (credfile_check_profile(config->profiles[i], &problems) < 0 ||
                            azurecli_check_profile(config->profiles[i], &problems) < 0) {
                                fprintf(stderr, "aksspark-tokend: out of memory\n");
                                return EXIT_FAILURE;
                        }
                if (problems.n > 0) {
                        for (size_t i = 0; i < problems.n; i++)
                                fprintf(stderr, "%s: %s\n", config_path, problems.lines[i]);
                        return EXIT_CONFIG;
                }
                for (size_t i = 0; i < config->n_profiles; i++) {
                        _cleanup_free_ char *line = profile_config_summary(config->profiles[i]);
                        printf("%s\n", line ? line : config->profiles[i]->name);
                }
                return EXIT_SUCCESS;
        }

        if (env.metrics_file && env.metrics_file[0] != '/') {
                fprintf(stderr, "aksspark-tokend: $AKSSPARK_TOKEND_METRICS_FILE must be an absolute path, not '%s'.\n",
                        env.metrics_file);
                return EXIT_CONFIG;
        }

        if (!config->socket_path && sd_listen_fds(false) <= 0) {
                fprintf(stderr,
                        "aksspark-tokend: no socket path: XDG_RUNTIME_DIR is not set and %s names no socket. "
                        "Set socket= in [daemon], or start it through aksspark-tokend.socket.\n",
                        config_path);
                return EXIT_CONFIG;
        }

        /* Tokens live in this process: no core dumps, no ptrace by other processes of the user. */
        (void) prctl(PR_SET_DUMPABLE, 0);
        (void) setrlimit(RLIMIT_CORE, &(struct rlimit) { 0, 0 });
        umask(0077);
        log_set_max_level(config->log_level);

        r = manager_new(config_path, TAKE_PTR(config), &env, TAKE_PTR(home), &m);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the daemon: %m");
                return EXIT_FAILURE;
        }
        r = manager_start(m);
        if (r < 0)
                return EXIT_FAILURE;
        r = manager_run(m);
        m = manager_free(m);
        /* Outputs still being written get a moment (a hung file system gets no more). */
        hung = worker_wait_all(WORKER_EXIT_WAIT);
        if (hung > 0)
                log_warning("An output write still hangs; exiting without it.");
        if (r < 0)
                log_error_errno(r, "The event loop failed: %m");
        else
                log_info("Stopped.");
        /* With a thread stuck in a hung file system, skip the exit handlers: one that waits on
         * every thread (LeakSanitizer's stops each one to scan it) would wait forever. */
        if (hung > 0)
                _exit(r < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

int main(int argc, char *argv[]) {
        Arguments args;
        int r;

        r = parse_argv(argc, argv, &args);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;
        return run(&args);
}
