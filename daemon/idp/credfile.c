/* Credential files: read on demand into a Secret, refused when others may read them. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/macro.h"
#include "idp/assertion.h"
#include "idp/credfile.h"

int credfile_read(const char *path, size_t max, bool private_only, bool trim, Secret **ret) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        size_t n = 0;
        char *buf;
        Secret *s;

        if (!path || !ret)
                return -EINVAL;
        /* O_NONBLOCK: a FIFO put in the file's place must not hang the loop; it is refused below. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if (private_only && (st.st_mode & (S_IRGRP | S_IROTH | S_IWGRP | S_IWOTH)))
                return -EPERM;
        if ((size_t) st.st_size > max)
                return -EFBIG;

        buf = malloc(max + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = read(fd, buf + n, max + 1 - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        int r = negative_errno();
                        erase_and_free(buf, max + 1);
                        return r;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n > max) {
                        erase_and_free(buf, max + 1);
                        return -EFBIG;
                }
        }
        while (trim && n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
                buf[--n] = 0;
        if (n == 0) {
                erase_and_free(buf, max + 1);
                return -ENODATA;
        }
        buf[n] = 0;
        s = secret_new(buf, n);
        erase_and_free(buf, max + 1);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int add(ConfigErrors *e, char *line) {
        char **t;

        if (!line)
                return -ENOMEM;
        t = reallocarray(e->lines, e->n + 2, sizeof *t);
        if (!t) {
                free(line);
                return -ENOMEM;
        }
        t[e->n++] = line;
        t[e->n] = NULL;
        e->lines = t;
        return 0;
}

static char *problem_line(const ProfileConfig *p, const char *key, const char *path, int r) {
        char *s;
        int k;

        if (r == -EPERM)
                k = asprintf(&s, "profile '%s': %s %s may be read by others than its owner: run chmod 600 %s", p->name,
                             key, path, path);
        else if (r == -EBADFD)
                k = asprintf(&s, "profile '%s': %s %s is not a regular file", p->name, key, path);
        else if (r == -EFBIG)
                k = asprintf(&s, "profile '%s': %s %s is larger than %d KiB, which is no credential", p->name, key,
                             path, CREDFILE_MAX / 1024);
        else if (r == -ENODATA)
                k = asprintf(&s, "profile '%s': %s %s is empty", p->name, key, path);
        else
                k = asprintf(&s, "profile '%s': %s %s cannot be read: %s", p->name, key, path, strerror(-r));
        return k < 0 ? NULL : s;
}

static const char *certificate_problem(int r) {
        switch (r) {
        case -EBADMSG:
                return "holds no PEM certificate";
        case -ENOKEY:
                return "holds no private key, or its password is wrong (client_certificate_password_file)";
        case -EKEYREJECTED:
                return "holds a private key that does not belong to its certificate";
        case -EPROTONOSUPPORT:
                return "holds a key that is not RSA (Azure AD accepts RSA certificates only)";
        default:
                return "cannot be used";
        }
}

int credfile_check_profile(const ProfileConfig *p, ConfigErrors *errors) {
        _cleanup_secret_ Secret *secret = NULL, *pem = NULL, *password = NULL;
        size_t before = errors->n;
        int r;

        /* A file that does not exist yet is not judged: ${CREDENTIALS_DIRECTORY} exists only
         * while the service runs, and init names files the person creates afterwards. */
        if (p->client_secret_file) {
                r = credfile_read(p->client_secret_file, CREDFILE_MAX, true, true, &secret);
                if (r < 0 && r != -ENOENT &&
                    add(errors, problem_line(p, "client_secret_file", p->client_secret_file, r)) < 0)
                        return -ENOMEM;
        }
        if (p->client_certificate_password_file) {
                r = credfile_read(p->client_certificate_password_file, CREDFILE_MAX, true, true, &password);
                if (r < 0 && r != -ENOENT &&
                    add(errors, problem_line(p, "client_certificate_password_file", p->client_certificate_password_file,
                                             r)) < 0)
                        return -ENOMEM;
        }
        if (p->client_certificate) {
                r = credfile_read(p->client_certificate, CREDFILE_MAX, true, false, &pem);
                if (r == -ENOENT)
                        ;
                else if (r < 0) {
                        if (add(errors, problem_line(p, "client_certificate", p->client_certificate, r)) < 0)
                                return -ENOMEM;
                } else if (!p->client_certificate_password_file || password) {
                        _cleanup_(client_certificate_freep) ClientCertificate *c = NULL;
                        char *line;

                        r = client_certificate_load(pem, password, &c);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0) {
                                if (asprintf(&line, "profile '%s': client_certificate %s %s", p->name,
                                             p->client_certificate, certificate_problem(r)) < 0)
                                        return -ENOMEM;
                                if (add(errors, line) < 0)
                                        return -ENOMEM;
                        }
                }
        }
        return (int) (errors->n - before);
}
