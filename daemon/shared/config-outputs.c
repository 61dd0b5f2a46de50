/* Which files the profiles of one configuration write, checked for clashes: pure. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/macro.h"
#include "shared/config-outputs.h"

static void describe_writer(const ConfigOutput *o, const ConfigOutput *other, char *buf, size_t size) {
        if (streq_set(o->profile, other->profile))
                snprintf(buf, size, "this profile's %s (line %u)", o->key, o->line);
        else
                snprintf(buf, size, "profile '%s' (%s, line %u)", o->profile, o->key, o->line);
}

static int report(config_output_problem_fn problem, void *userdata, unsigned line, const char *format, ...)
        _printf_(4, 5);

static int report(config_output_problem_fn problem, void *userdata, unsigned line, const char *format, ...) {
        _cleanup_free_ char *message = NULL;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&message, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        problem(line, message, userdata);
        return 0;
}

int config_check_outputs(const ConfigOutput *outs, size_t n, const Config *c, config_output_problem_fn problem,
                         void *userdata) {
        char who[256];
        int r;

        for (size_t j = 1; j < n; j++)
                for (size_t i = 0; i < j; i++)
                        if (streq_set(outs[i].path, outs[j].path)) {
                                describe_writer(&outs[i], &outs[j], who, sizeof who);
                                r = report(problem, userdata, outs[j].line,
                                           "profile '%s' %s %s is also written by %s: give each file one writer",
                                           outs[j].profile, outs[j].key, outs[j].path, who);
                                if (r < 0)
                                        return r;
                                break;
                        }

        for (size_t j = 0; j < n; j++)
                for (size_t i = 0; i < c->n_profiles; i++) {
                        const ProfileConfig *pc = c->profiles[i];
                        const char *what = streq_set(pc->kubeconfig, outs[j].path) ? "kubeconfig"
                                           : streq_set(pc->ca_file, outs[j].path)  ? "ca_file"
                                                                                   : NULL;
                        if (what) {
                                r = report(problem, userdata, outs[j].line,
                                           "profile '%s' %s %s is also the %s of profile '%s': it would be overwritten",
                                           outs[j].profile, outs[j].key, outs[j].path, what, pc->name);
                                if (r < 0)
                                        return r;
                                break;
                        }
                }
        return 0;
}
